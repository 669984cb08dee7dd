"""TOTP secrets and recovery-code seeds are sealed at rest (accounts.mfa.MfaAdapter), and the
migration seals those stored before."""

import importlib
import json
import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection

from vault import keys
from vault.crypto import DecryptionFailed
from vault.keys import get_provider

pytestmark = pytest.mark.django_db
seal_migration = importlib.import_module("accounts.migrations.0003_seal_mfa_secrets")


def current_code(secret):
    from tests.factories import totp_code

    return totp_code(secret)


def stored_data(authenticator):
    return json.dumps(Authenticator.objects.get(pk=authenticator.pk).data)


def test_a_totp_secret_is_stored_sealed_and_still_checks_codes(alice):
    secret = generate_totp_secret()

    totp = TOTP.activate(alice, secret)

    assert secret not in stored_data(totp.instance)
    assert TOTP(Authenticator.objects.get(pk=totp.instance.pk)).validate_code(current_code(secret))
    assert not TOTP(Authenticator.objects.get(pk=totp.instance.pk)).validate_code("000000")


def test_a_recovery_seed_is_stored_sealed_and_gives_the_same_codes(alice):
    codes = RecoveryCodes.activate(alice)
    first = codes.generate_codes()

    again = RecoveryCodes(Authenticator.objects.get(pk=codes.instance.pk)).generate_codes()

    assert first == again and len(first) == 10
    assert all(code not in stored_data(codes.instance) for code in first)


def test_a_plaintext_secret_written_into_the_table_is_refused_not_used(alice):
    totp = TOTP.activate(alice, generate_totp_secret())
    chosen = generate_totp_secret()
    Authenticator.objects.filter(pk=totp.instance.pk).update(data={"secret": chosen})

    with pytest.raises(DecryptionFailed):
        TOTP(Authenticator.objects.get(pk=totp.instance.pk)).validate_code(current_code(chosen))


def test_the_migration_seals_secrets_stored_in_the_clear_and_can_undo_it(alice, bob):
    secret = generate_totp_secret()
    plain_totp = Authenticator.objects.create(user=alice, type=Authenticator.Type.TOTP, data={"secret": secret})
    plain_codes = Authenticator.objects.create(
        user=bob, type=Authenticator.Type.RECOVERY_CODES, data={"migrated_codes": ["12345678"], "used_mask": 0}
    )

    seal_migration.seal(apps, None)
    seal_migration.seal(apps, None)  # idempotent: sealed values are left as they are

    assert secret not in stored_data(plain_totp) and "12345678" not in stored_data(plain_codes)
    assert TOTP(Authenticator.objects.get(pk=plain_totp.pk)).validate_code(current_code(secret))
    assert RecoveryCodes(Authenticator.objects.get(pk=plain_codes.pk)).generate_codes() == ["12345678"]
    seal_migration.unseal(apps, None)
    assert Authenticator.objects.get(pk=plain_totp.pk).data == {"secret": secret}


def test_kek_rotation_rewraps_mfa_secrets_and_retiring_waits_for_them(alice, bob, vault_keys, monkeypatch, capsys):
    monkeypatch.setattr(keys, "RELOAD_CHECK_SECONDS", 0)
    secret = generate_totp_secret()
    totp = TOTP.activate(alice, secret)
    codes = RecoveryCodes.activate(bob).generate_codes()
    old = get_provider().active_kek_id()
    get_provider().add_kek()  # a new KEK, nothing rewrapped yet

    with pytest.raises(CommandError, match="still wraps 2 data key"):
        call_command("vault_keys", "retire", old)  # the two secrets (no data key exists)
    call_command("vault_keys", "rotate", "--rewrap-only")
    assert "Rewrapped 2 other sealed secret(s)" in capsys.readouterr().out
    call_command("vault_keys", "retire", old)

    assert old not in stored_data(totp.instance)
    assert TOTP(Authenticator.objects.get(pk=totp.instance.pk)).validate_code(current_code(secret))
    assert RecoveryCodes(Authenticator.objects.get(user=bob)).generate_codes() == codes


def test_the_secret_of_a_totp_app_being_set_up_is_sealed_in_the_session(client, django_user_model):
    import re

    from allauth.account.models import EmailAddress
    from django.contrib.sessions.models import Session

    person = django_user_model.objects.create_user("ada@example.com", "a long pass phrase 7")
    EmailAddress.objects.create(user=person, email=person.email, verified=True, primary=True)
    client.post("/accounts/login/", {"login": person.email, "password": "a long pass phrase 7"})
    client.post("/accounts/reauthenticate/", {"password": "a long pass phrase 7"})  # allauth asks again

    page = client.get("/accounts/2fa/totp/activate/").content.decode()
    secret = re.search(r'alt="([A-Z2-7]{16,})"', page).group(1)  # shown for apps that cannot scan
    stored = json.dumps([row.get_decoded() for row in Session.objects.all()])
    assert secret not in stored and "vault_sealed_totp_setup" in stored

    response = client.post("/accounts/2fa/totp/activate/", {"code": current_code(secret)})

    assert response.status_code == 302  # the sealed secret was unsealed to check the code
    totp = Authenticator.objects.get(user=person, type=Authenticator.Type.TOTP)
    assert secret not in stored_data(totp)


def test_a_damaged_mfa_secret_neither_stops_rotation_nor_blocks_retiring(alice, bob, vault_keys, monkeypatch, capsys):
    monkeypatch.setattr(keys, "RELOAD_CHECK_SECONDS", 0)
    TOTP.activate(alice, generate_totp_secret())
    codes = RecoveryCodes.activate(bob).generate_codes()
    Authenticator.objects.filter(user=alice).update(data={"secret": "vault-sealed:{broken"})
    old = get_provider().active_kek_id()
    get_provider().add_kek()

    call_command("vault_keys", "rotate", "--rewrap-only")
    call_command("vault_keys", "status")
    assert "unreadable" in capsys.readouterr().out
    call_command("vault_keys", "retire", old)  # the damaged one names no KEK it could need

    assert RecoveryCodes(Authenticator.objects.get(user=bob)).generate_codes() == codes


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks between two connections need PostgreSQL")
def test_rotation_does_not_undo_a_recovery_code_used_meanwhile(committed_db, vault_keys, monkeypatch):
    import threading

    from accounts import mfa
    from accounts.models import User

    monkeypatch.setattr(keys, "RELOAD_CHECK_SECONDS", 0)
    person = User.objects.create_user("carol@example.com")
    codes = RecoveryCodes.activate(person).generate_codes()
    get_provider().add_kek()
    rewrapping, used = threading.Event(), []
    rewrap = mfa.crypto.standalone_rewrap

    def slow_rewrap(envelope, *, context):
        rewrapping.set()  # rotation holds the row; the code is used meanwhile
        time.sleep(0.5)
        return rewrap(envelope, context=context)

    def use_a_code():
        try:
            rewrapping.wait(timeout=30)
            used.append(RecoveryCodes(Authenticator.objects.get(user=person)).validate_code(codes[0]))
        finally:
            connection.close()

    monkeypatch.setattr(mfa.crypto, "standalone_rewrap", slow_rewrap)
    other = threading.Thread(target=use_a_code)
    other.start()
    mfa.mfa_secrets_rewrap(sender=None)
    other.join(timeout=60)

    assert used == [True]
    assert not RecoveryCodes(Authenticator.objects.get(user=person)).validate_code(codes[0]), "used twice"
