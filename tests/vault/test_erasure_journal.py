"""The erasure journal (vault/erasure_journal.py): written before keys are destroyed, signed with
the audit key, verified when read; `erasure_journal_replay` and `vault_erasure_replay`."""

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command

from vault import services
from vault.crypto import SubjectErased, data_keys_by_kek
from vault.erasure_journal import (
    ErasureJournalError,
    ErasureJournalForged,
    erasure_journal_append,
    erasure_journal_entries,
)
from vault.fields import unseal
from vault.keys import get_provider
from vault.models import AuditEntry, AuditPseudonym, DataKey, ErasedSubject
from vault.services import erasure_journal_replay, subject_keys_shred

WHEN = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def shred(subject_id):
    return subject_keys_shred(subject_id=subject_id, actor_type="system", actor_id="test")


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_entry_holds_the_subject_the_time_and_a_signature_only(erasure_journal):
    subject = uuid.uuid4()
    erasure_journal_append(subject_id=subject, erased_at=WHEN)
    (record,) = lines(erasure_journal)
    assert set(record) == {"subject_id", "erased_at", "signature"}
    assert record["subject_id"] == str(subject) and record["erased_at"] == WHEN.isoformat()
    (entry,) = erasure_journal_entries()
    assert entry.subject_id == subject and entry.erased_at == WHEN
    assert entry.where == f"{erasure_journal}:1"


def test_a_directory_gets_one_file_per_entry(settings, tmp_path):
    directory = tmp_path / "journal"
    directory.mkdir()
    settings.VAULT_ERASURE_JOURNAL = str(directory)
    subjects = [uuid.uuid4(), uuid.uuid4()]
    for subject in subjects:
        erasure_journal_append(subject_id=subject, erased_at=WHEN)
    assert len(list(directory.glob("erasure-*.json"))) == 2
    assert sorted(entry.subject_id for entry in erasure_journal_entries()) == sorted(subjects)


def test_an_empty_journal_has_no_entries_and_a_missing_mount_is_an_error(settings, erasure_journal, tmp_path):
    assert list(erasure_journal_entries()) == []
    settings.VAULT_ERASURE_JOURNAL = str(tmp_path / "not-mounted" / "journal.jsonl")
    with pytest.raises(ErasureJournalError, match="cannot be read"):
        list(erasure_journal_entries())


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda r, key: {**r, "subject_id": str(uuid.uuid4())}, id="another-subject"),
        pytest.param(lambda r, key: {**r, "erased_at": "2020-01-01T00:00:00+00:00"}, id="another-time"),
        pytest.param(
            lambda r, key: {
                **r,
                "signature": base64.b64encode(
                    key.sign(b"vault-erasure-journal/1\n" + f"{r['subject_id']}\n{r['erased_at']}".encode())
                ).decode(),
            },
            id="signed-with-another-key",
        ),
        pytest.param(lambda r, key: {**r, "note": "x"}, id="extra-field"),
        pytest.param(lambda r, key: {**r, "signature": "bm90IGEgc2lnbmF0dXJl"}, id="short-signature"),
    ],
)
def test_a_forged_entry_is_refused_loudly(erasure_journal, forge):
    erasure_journal_append(subject_id=uuid.uuid4(), erased_at=WHEN)
    (record,) = lines(erasure_journal)
    forged = forge(record, Ed25519PrivateKey.generate())
    erasure_journal.write_text(json.dumps(record) + "\n" + json.dumps(forged) + "\n")
    with pytest.raises(ErasureJournalForged, match=f"{erasure_journal}:2"):
        list(erasure_journal_entries())


def test_a_line_that_is_no_entry_is_refused(erasure_journal):
    erasure_journal.write_text("not json\n")
    with pytest.raises(ErasureJournalForged, match="not JSON"):
        list(erasure_journal_entries())


@pytest.mark.django_db
def test_the_shred_journals_before_it_destroys_any_key(thing, erasure_journal, monkeypatch):
    row = thing("Ada")
    seen = []
    real_shred = services.subject_shred

    def spy(subject_id):
        seen.append([entry.subject_id for entry in erasure_journal_entries()])
        return real_shred(subject_id)

    monkeypatch.setattr(services, "subject_shred", spy)
    assert shred(row.subject_id) == 1
    assert seen == [[row.subject_id]]
    with pytest.raises(SubjectErased):
        unseal(row, "value", purpose="test")


@pytest.mark.django_db
def test_a_journal_that_cannot_be_written_stops_the_erasure_before_anything_is_destroyed(thing, settings, tmp_path):
    row = thing("Ada")
    settings.VAULT_ERASURE_JOURNAL = str(tmp_path / "not-mounted" / "journal.jsonl")
    with pytest.raises(ErasureJournalError, match="cannot be written") as caught:
        shred(row.subject_id)
    assert caught.value.code == "erasure_journal_unavailable"
    assert DataKey.objects.filter(subject_id=row.subject_id).exists()
    assert not ErasedSubject.objects.filter(subject_id=row.subject_id).exists()
    assert unseal(row, "value", purpose="test") == "Ada"


@pytest.mark.django_db
def test_without_a_journal_the_shred_still_works_and_replay_refuses(thing, settings):
    settings.VAULT_ERASURE_JOURNAL = ""
    row = thing("Ada")
    assert shred(row.subject_id) == 1
    with pytest.raises(ErasureJournalError, match="No erasure journal is configured"):
        erasure_journal_replay()
    with pytest.raises(CommandError, match="No erasure journal is configured"):
        call_command("vault_erasure_replay")


@pytest.mark.django_db
def test_replay_destroys_keys_that_came_back_and_cuts_the_pseudonym_link_again(thing, capsys):
    erased, other = thing("Ada"), thing("Grace")
    shred(erased.subject_id)
    # What a restore brings back: a key and the audit pseudonym link, but no erasure marker.
    ErasedSubject.objects.filter(subject_id=erased.subject_id).delete()
    kek_id = get_provider().active_kek_id()
    DataKey.objects.create(subject_id=erased.subject_id, data_class="profile", version=1, kek_id=kek_id, wrapped=b"x")
    AuditPseudonym.objects.create(subject_id=erased.subject_id)

    call_command("vault_erasure_replay")
    assert "Erasure journal replayed: 1 subject(s)" in capsys.readouterr().out
    assert not DataKey.objects.filter(subject_id=erased.subject_id).exists()
    assert not AuditPseudonym.objects.filter(subject_id=erased.subject_id).exists()
    with pytest.raises(SubjectErased):
        unseal(erased, "value", purpose="test")
    assert unseal(other, "value", purpose="test") == "Grace"

    entries = AuditEntry.objects.count()
    assert erasure_journal_replay() == [erased.subject_id]  # again: nothing left to do, nothing recorded
    assert AuditEntry.objects.count() == entries


@pytest.mark.django_db
def test_a_forged_entry_makes_the_replay_erase_nobody(thing, erasure_journal):
    asked, victim = thing("Ada"), thing("Grace")
    erasure_journal_append(subject_id=asked.subject_id, erased_at=WHEN)  # journalled, erasure not run yet
    (record,) = lines(erasure_journal)
    with erasure_journal.open("a") as journal:
        journal.write(json.dumps({**record, "subject_id": str(victim.subject_id)}) + "\n")

    with pytest.raises(ErasureJournalForged):
        erasure_journal_replay()
    with pytest.raises(CommandError, match="does not verify"):
        call_command("vault_erasure_replay")
    assert sum(data_keys_by_kek().values()) == 2
    assert unseal(asked, "value", purpose="test") == "Ada"
    assert unseal(victim, "value", purpose="test") == "Grace"
