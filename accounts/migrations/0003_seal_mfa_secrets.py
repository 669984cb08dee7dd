"""Seal the TOTP secrets and recovery-code seeds stored before `accounts.mfa.MfaAdapter` sealed
them (a data migration; the reverse puts them back in the clear, as they were)."""

from django.db import migrations

SECRETS = {"totp": ["secret"], "recovery_codes": ["seed"]}


def _convert(apps, convert):
    Authenticator = apps.get_model("mfa", "Authenticator")
    for authenticator in Authenticator.objects.filter(type__in=list(SECRETS)).iterator():
        data = dict(authenticator.data)
        for name in SECRETS[authenticator.type]:
            if isinstance(data.get(name), str):
                data[name] = convert(data[name])
        if isinstance(data.get("migrated_codes"), list):  # allauth's older form of recovery codes
            data["migrated_codes"] = [convert(code) for code in data["migrated_codes"]]
        if data != authenticator.data:
            authenticator.data = data
            authenticator.save(update_fields=["data"])


def seal(apps, schema_editor):
    from accounts.mfa import SEALED_SECRET_PREFIX, mfa_secret_seal

    _convert(apps, lambda value: value if value.startswith(SEALED_SECRET_PREFIX) else mfa_secret_seal(value))


def unseal(apps, schema_editor):
    from accounts.mfa import SEALED_SECRET_PREFIX, mfa_secret_unseal

    _convert(apps, lambda value: mfa_secret_unseal(value) if value.startswith(SEALED_SECRET_PREFIX) else value)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_sealed_social_data"),
        ("mfa", "0003_authenticator_type_uniq"),
    ]

    operations = [migrations.RunPython(seal, unseal)]
