"""Key epochs (vault/crypto/epochs.py): a new KEK on schedule, old ones destroyed after the backup
retention, under a lock; the beat task and `vault_keys epoch`. The clock is the `now` argument."""

import fcntl
import json
import logging
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from tests.factories import add_totp
from vault import tasks
from vault.crypto import data_keys_by_kek, key_epoch_advance, standalone_by_kek
from vault.fields import unseal
from vault.keys import get_provider

DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def _epochs(settings):
    settings.VAULT_KEY_EPOCH_DAYS = 30
    settings.VAULT_BACKUP_RETENTION_DAYS = 35


def key_file(path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture
def start():
    """When the test key set's KEK became active: the clock starts there."""
    since = get_provider().active_since()
    assert since is not None
    return since


@pytest.mark.django_db
def test_nothing_happens_within_an_epoch(thing, vault_keys, start):
    row = thing("v")
    before = vault_keys.read_text()
    report = key_epoch_advance(now=start + 29 * DAY)
    assert report.new_kek is None and report.retired == [] and report.rewrapped == 0
    assert vault_keys.read_text() == before
    assert unseal(row, "value", purpose="test") == "v"


@pytest.mark.django_db
def test_a_new_epoch_rewraps_everything_and_keeps_the_old_kek_for_the_retention(thing, vault_keys, start):
    rows = [thing(f"v{i}", subject_id=uuid.uuid4()) for i in range(5)]
    old = get_provider().active_kek_id()
    now = start + 31 * DAY

    report = key_epoch_advance(now=now)

    new = get_provider().active_kek_id()
    assert report.new_kek == new != old
    assert report.rewrapped == 5 and data_keys_by_kek() == {new: 5}
    assert report.kept == [old] and report.retired == []
    data = key_file(vault_keys)
    assert set(data["keks"]) == {old, new}
    assert data["activated"][new] == data["superseded"][old] == now.isoformat()
    assert [unseal(row, "value", purpose="test") for row in rows] == [f"v{i}" for i in range(5)]
    # Idempotent: the same moment again starts no second epoch.
    again = key_epoch_advance(now=now)
    assert again.new_kek is None and again.rewrapped == 0 and get_provider().active_kek_id() == new


@pytest.mark.django_db
def test_an_old_kek_is_destroyed_only_after_the_retention_counted_from_its_epochs_end(thing, vault_keys, start):
    row = thing("v")
    old = get_provider().active_kek_id()
    ended = start + 31 * DAY
    key_epoch_advance(now=ended)

    at_retention = key_epoch_advance(now=ended + 35 * DAY)
    assert old in at_retention.kept and old in key_file(vault_keys)["keks"]

    later = key_epoch_advance(now=ended + 35 * DAY + timedelta(seconds=1))
    assert later.retired == [old]
    assert old not in key_file(vault_keys)["keks"] and old not in get_provider().kek_ids()
    assert old not in key_file(vault_keys).get("superseded", {})
    assert unseal(row, "value", purpose="test") == "v"


@pytest.mark.django_db
def test_a_kek_that_still_wraps_something_is_kept_past_its_retention(thing, vault_keys, start, caplog):
    row = thing("v")
    old = get_provider().active_kek_id()
    get_provider().add_kek(now=start)  # a rotation that never rewrapped: `old` still wraps the key
    now = start + 40 * DAY

    with caplog.at_level(logging.WARNING, logger="vault.crypto.epochs"):
        report = key_epoch_advance(now=now)
    assert old in report.kept and old in key_file(vault_keys)["keks"]
    assert f"{old} kept past its retention" in caplog.text and "still wraps 1 data key" in caplog.text
    # That run rewrapped everything; the next one destroys the old KEK.
    assert set(data_keys_by_kek()) == {get_provider().active_kek_id()}
    assert key_epoch_advance(now=now + DAY).retired == [old]
    assert unseal(row, "value", purpose="test") == "v"


@pytest.mark.django_db
def test_standalone_secrets_follow_the_epoch(alice, vault_keys, start):
    add_totp(alice)
    old = get_provider().active_kek_id()
    assert set(standalone_by_kek()) == {old}
    report = key_epoch_advance(now=start + 31 * DAY)
    assert report.standalone_rewrapped >= 1
    assert set(standalone_by_kek()) == {report.new_kek}


@pytest.mark.django_db
def test_an_old_kek_without_a_recorded_end_gets_its_retention_from_now(thing, vault_keys, start):
    thing("v")
    old = get_provider().active_kek_id()
    get_provider().add_kek(now=start)
    key_epoch_advance(now=start + DAY)  # rewraps
    data = key_file(vault_keys)
    del data["superseded"][old]  # a key set written before the times were kept
    vault_keys.write_text(json.dumps(data))
    now = start + 100 * DAY

    report = key_epoch_advance(now=now)
    assert old in report.kept and key_file(vault_keys)["superseded"][old] == now.isoformat()
    assert old not in key_epoch_advance(now=now + 35 * DAY).retired
    assert old in key_epoch_advance(now=now + 36 * DAY).retired


@pytest.mark.django_db
def test_a_second_run_while_one_holds_the_lock_does_nothing(thing, vault_keys, start):
    thing("v")
    before = vault_keys.read_text()
    lock_path = vault_keys.with_name(f".{vault_keys.name}.epoch.lock")
    with open(lock_path, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        report = key_epoch_advance(now=start + 60 * DAY)
    assert report.skipped == "busy" and report.new_kek is None
    assert vault_keys.read_text() == before
    assert key_epoch_advance(now=start + 60 * DAY).new_kek is not None  # the lock is free again


@pytest.mark.django_db
def test_keys_this_process_cannot_change_are_skipped_with_a_log_line(settings, vault_keys, start, caplog):
    settings.VAULT_KEKS = vault_keys.read_text()  # keys from the environment: read-only here
    with caplog.at_level(logging.INFO, logger="vault.crypto.epochs"):
        report = key_epoch_advance(now=start + 60 * DAY)
    assert report.skipped == "provider"
    assert "key epoch skipped" in caplog.text
    with pytest.raises(CommandError, match="cannot be changed here"):
        call_command("vault_keys", "epoch")


@pytest.mark.django_db
def test_the_beat_task_advances_the_epoch(thing, vault_keys, start, monkeypatch):
    entry = django_settings.CELERY_BEAT_SCHEDULE["vault-key-epoch"]
    assert entry["task"] == tasks.key_epoch.name == "vault.key_epoch_advance"
    thing("v")
    old = get_provider().active_kek_id()
    # The task takes the real clock; the test key set is made to look 31 days old.
    data = key_file(vault_keys)
    data["activated"][old] = (start - 31 * DAY).isoformat()
    vault_keys.write_text(json.dumps(data))

    result = tasks.key_epoch.apply().get()  # in this process, whatever broker the run has
    assert result["new_kek"] == get_provider().active_kek_id() != old
    assert result["rewrapped"] == 1 and result["skipped"] is None


@pytest.mark.django_db
def test_the_command_reports_what_it_did(thing, vault_keys, capsys):
    thing("v")
    call_command("vault_keys", "epoch")
    out = capsys.readouterr().out
    assert "The active KEK is within its epoch; no new KEK." in out and "Rewrapped 0 data key(s)" in out

    old = get_provider().active_kek_id()
    data = key_file(vault_keys)
    data["activated"][old] = "2000-01-01T00:00:00+00:00"
    vault_keys.write_text(json.dumps(data))
    call_command("vault_keys", "epoch")
    out = capsys.readouterr().out
    new = get_provider().active_kek_id()
    assert f"New active KEK {new}." in out and "Rewrapped 1 data key(s)" in out
    assert f"Old KEKs kept (within the backup retention, or still needed): {old}." in out
