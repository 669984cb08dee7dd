"""Operations on the keys are audited (`keys.*`), naming the KEKs concerned and the command or task
that ran them, never a key."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command

from vault import keys, tasks
from vault.audit import audit_verify
from vault.keys import get_provider
from vault.models import AuditEntry
from vault.services import key_epoch_run

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def key_entries() -> list[tuple[str, str, list[str]]]:
    rows = AuditEntry.objects.filter(action__startswith="keys.").order_by("seq")
    return [(e.action, e.actor_id, e.fields) for e in rows]


def name(kek_id: str) -> str:
    return kek_id.replace("-", "_")


def test_rotate_retire_and_a_new_receipt_key_are_each_audited(thing, vault_keys, monkeypatch):
    thing("v")
    old = get_provider().active_kek_id()

    call_command("vault_keys", "rotate")
    new = get_provider().active_kek_id()
    monkeypatch.setattr(keys, "RELOAD_CHECK_SECONDS", 0)
    call_command("vault_keys", "retire", old)
    call_command("vault_keys", "rotate-receipt-key")
    call_command("vault_keys", "status")  # reads change nothing and record nothing

    assert key_entries() == [
        ("keys.kek_add", "cli.vault_keys", [name(new)]),
        ("keys.rewrap", "cli.vault_keys", [name(new)]),
        ("keys.kek_retire", "cli.vault_keys", [name(old)]),
        ("keys.receipt_key_rotate", "cli.vault_keys", []),
    ]
    secrets = json.loads(vault_keys.read_text())
    for entry in AuditEntry.objects.all():
        for secret in [*secrets["keks"].values(), secrets["receipt_signing_key"]]:
            assert secret not in json.dumps(entry.fields)
    assert audit_verify().ok


def test_a_key_epoch_run_by_the_beat_task_is_audited(thing, vault_keys, settings):
    settings.VAULT_KEY_EPOCH_DAYS = 30
    thing("v")
    since = get_provider().active_since()
    assert since is not None
    report = key_epoch_run(actor_id="vault.key_epoch", now=since + 31 * DAY)

    assert key_entries() == [
        ("keys.kek_add", "vault.key_epoch", [name(report.new_kek)]),
        ("keys.rewrap", "vault.key_epoch", [name(report.new_kek)]),
    ]
    assert tasks.key_epoch() == {  # within the new epoch: nothing done, nothing recorded
        "skipped": None,
        "new_kek": None,
        "rewrapped": 0,
        "standalone_rewrapped": 0,
        "retired": [],
        "kept": report.kept,
    }
    assert len(key_entries()) == 2
