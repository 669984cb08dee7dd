"""System checks: `manage.py check` (and migrate, runserver) fail clearly on unusable keys, and
`check --deploy` warns when audit checkpoints are not exported or erasures not journalled."""

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from vault.keys import VaultError, get_provider


@checks.register("vault")
def check_vault_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        get_provider().self_test()
    except (ImproperlyConfigured, VaultError) as exc:
        return [checks.Error(str(exc), hint="`manage.py vault_keys init` creates local keys.", id="vault.E001")]
    return []


@checks.register("vault", deploy=True)
def check_audit_checkpoint_sink(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Checkpoints kept only in the database can be deleted by whoever can write it."""
    if settings.AUDIT_CHECKPOINT_SINK:
        return []
    return [
        checks.Warning(
            "AUDIT_CHECKPOINT_SINK is not set: signed audit checkpoints stay in the database only, where "
            "whoever can write the database can delete them and rewrite the log after the last one left.",
            hint="Point it at write-once storage the database's administrators cannot rewrite (docs/audit.md).",
            id="vault.W001",
        )
    ]


@checks.register("vault", deploy=True)
def check_erasure_journal(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Without the journal, a restored backup brings back people erased since it was taken."""
    if settings.VAULT_ERASURE_JOURNAL:
        return []
    return [
        checks.Warning(
            "VAULT_ERASURE_JOURNAL is not set: erasures are not journalled outside the database, so restoring a "
            "backup brings back everyone erased after it was taken, until the key epochs make it unreadable.",
            hint="Point it at storage outside the database and its backups (docs/backups.md).",
            id="vault.W002",
        )
    ]
