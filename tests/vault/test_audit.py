"""The tamper-evident audit log: appends, verification, checkpoints, erasure, the PostgreSQL
append-only trigger and concurrent writers (vault/audit/, docs/audit.md)."""

import base64
import hashlib
import itertools
import json
import threading
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from tests.factories import AUDIT_TABLES, set_audit_triggers
from vault.audit import (
    CheckpointExportFailed,
    InvalidAuditEntry,
    NothingToSign,
    Problem,
    audit_checkpoint_sign,
    audit_details_read,
    audit_entry_hash,
    audit_pseudonym_for,
    audit_pseudonym_unlink,
    audit_record,
    audit_record_many,
    audit_verify,
    checkpoint_record,
    exported_checkpoints_read,
)
from vault.crypto import SubjectErased, subject_shred
from vault.keys import get_provider, new_key_set, write_key_file
from vault.log import request_id_var
from vault.models import AUDIT_GENESIS_HASH, AuditCheckpoint, AuditEntry, AuditHead, AuditPseudonym
from vault.signing import jwk_thumbprint

APPEND_ONLY_TABLES = ("vault_auditentry", "vault_auditcheckpoint")
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the append-only trigger and concurrent appends need PostgreSQL (set DATABASE_URL=postgres://...)",
)
SECRET = "ada.lovelace@example.com"


@contextmanager
def tampering():
    """What an attacker with the database owner's rights does first: switch the append-only
    trigger off (PostgreSQL; SQLite has none), so the chain alone must catch what follows."""
    set_audit_triggers(enabled=False)
    try:
        yield
    finally:
        set_audit_triggers(enabled=True)


@pytest.fixture
def subject() -> uuid.UUID:
    return uuid.uuid4()


def _read(subject_id=None, n=1, **overrides) -> list[AuditEntry]:
    entries = []
    for i in range(n):
        kwargs = {
            "actor_type": "staff",
            "actor_id": "7d0c2c9e-staff",
            "action": "profile.read",
            "purpose": "support",
            "fields": ["email", "phone"],
            "subject_id": subject_id,
            "request_id": f"req-{i:08d}",
        }
        entries.append(audit_record(**{**kwargs, **overrides}))
    return entries


def _rechain_from(seq: int, *, insert_forged: bool) -> None:
    """Rewrite the chain from `seq` on and re-hash it consistently (head too), as someone able to
    compute hashes would: optionally with a forged entry inserted at `seq`."""
    tail = list(AuditEntry.objects.filter(seq__gte=seq))
    AuditEntry.objects.filter(seq__gte=seq).delete()
    rewritten = []
    if insert_forged:
        rewritten.append(
            AuditEntry(
                seq=seq,
                created_at=tail[0].created_at,
                actor_type="staff",
                actor_id="mallory",
                action="profile.read",
                fields=["email"],
                request_id="-",
            )
        )
    for entry in tail:
        entry.seq = seq + len(rewritten)
        rewritten.append(entry)
    prev_hash = AuditEntry.objects.get(seq=seq - 1).hash if seq > 1 else AUDIT_GENESIS_HASH
    for entry in rewritten:
        entry.prev_hash = prev_hash
        entry.hash = prev_hash = audit_entry_hash(entry)
    AuditEntry.objects.bulk_create(rewritten)
    AuditHead.objects.update(seq=rewritten[-1].seq, hash=prev_hash)


# --- Appending and verifying -------------------------------------------------------------------


@pytest.mark.django_db
def test_an_empty_log_is_intact():
    result = audit_verify()
    assert result.ok
    assert (result.entries, result.head_hash) == (0, AUDIT_GENESIS_HASH)


@pytest.mark.django_db
def test_appends_are_chained_and_verify_intact(subject):
    entries = _read(subject, n=5)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == AUDIT_GENESIS_HASH
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(entries))
    assert AuditHead.objects.get().seq == 5

    result = audit_verify(batch_size=2)  # several round trips
    assert result.ok, result.failure
    assert (result.entries, result.head_seq, result.head_hash) == (5, 5, entries[-1].hash)


@pytest.mark.django_db
def test_an_entry_rolls_back_with_the_action_it_records(subject):
    _read(subject)

    def action_that_fails_after_recording() -> None:
        with transaction.atomic():
            _read(subject)
            raise RuntimeError("the action failed")

    with pytest.raises(RuntimeError):
        action_that_fails_after_recording()
    assert AuditHead.objects.get().seq == 1
    assert audit_verify().ok
    assert _read(subject)[0].seq == 2


@pytest.mark.django_db
def test_entries_stamped_on_a_whole_second_verify(subject, monkeypatch):
    """The database renders times for verification; SQLite stores no fraction for .000000."""
    moment = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
    monkeypatch.setattr("vault.audit.append.timezone.now", lambda: moment)
    _read(subject)
    monkeypatch.setattr("vault.audit.append.timezone.now", lambda: moment.replace(microsecond=7))
    _read(subject)
    result = audit_verify()
    assert result.ok, result.failure
    assert result.entries == 2


@pytest.mark.django_db
def test_the_request_id_defaults_to_the_current_one():
    token = request_id_var.set("req-abcdef123456")
    try:
        entry = audit_record(actor_type="system", actor_id="retention", action="events.purge")
    finally:
        request_id_var.reset(token)
    assert entry.request_id == "req-abcdef123456"
    assert audit_verify().ok


@pytest.mark.django_db
def test_entries_name_fields_and_people_by_pseudonym_never_values(subject):
    entry = _read(subject)[0]
    entry.refresh_from_db()
    assert entry.fields == ["email", "phone"]
    assert entry.subject_pseudonym == AuditPseudonym.objects.get(subject_id=subject).pseudonym
    assert entry.subject_pseudonym != subject

    with pytest.raises(InvalidAuditEntry) as excinfo:
        audit_record(actor_type="staff", actor_id="s1", action="profile.read", fields=[SECRET])
    assert SECRET not in str(excinfo.value), "a rejected value is not echoed into an error either"
    with pytest.raises(InvalidAuditEntry, match="never an email"):
        audit_record(actor_type="staff", actor_id=SECRET, action="profile.read")
    with pytest.raises(InvalidAuditEntry, match="actor_type"):
        audit_record(actor_type="robot", actor_id="r1", action="profile.read")
    with pytest.raises(InvalidAuditEntry, match="control characters"):
        audit_record(actor_type="staff", actor_id="s1", action="profile.read", purpose="a\x1fb")
    assert AuditEntry.objects.count() == 1


@pytest.mark.django_db
def test_details_are_encrypted_and_only_their_ciphertext_is_stored(subject):
    entry = audit_record(
        actor_type="staff",
        actor_id="s1",
        action="profile.correct",
        fields=["email"],
        subject_id=subject,
        details={"note": f"corrected to {SECRET}"},
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {AuditEntry._meta.db_table} WHERE seq = %s", [entry.seq])  # noqa: S608
        row = cursor.fetchone()
    stored = b"".join(bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode() for value in row)
    assert SECRET.encode() not in stored
    assert audit_details_read(entry=AuditEntry.objects.get(seq=entry.seq), subject_id=subject) == {
        "note": f"corrected to {SECRET}"
    }
    with pytest.raises(InvalidAuditEntry, match="subject_id"):
        audit_record(actor_type="system", actor_id="x", action="profile.correct", details={"note": "n"})


@pytest.mark.django_db
def test_erasure_leaves_the_chain_verifiable_and_anonymous(subject):
    _read(subject, n=2)
    audit_record(
        actor_type="person", actor_subject_id=subject, action="subject.shred", subject_id=subject, details={"k": 1}
    )
    pseudonym = AuditPseudonym.objects.get(subject_id=subject).pseudonym
    assert AuditEntry.objects.get(seq=3).actor_id == str(pseudonym), "the person acts under their pseudonym"

    subject_shred(subject)
    assert audit_pseudonym_unlink(subject) is True

    result = audit_verify()
    assert result.ok, result.failure
    assert result.entries == 3
    assert not AuditPseudonym.objects.filter(pseudonym=pseudonym).exists(), "nothing links the entries to them"
    shredded = AuditEntry.objects.get(seq=3)
    assert shredded.subject_pseudonym == pseudonym and shredded.details is not None
    with pytest.raises(SubjectErased):
        audit_details_read(entry=shredded, subject_id=subject)
    with pytest.raises(SubjectErased):
        audit_pseudonym_for(subject)  # no new link to an erased person


# --- Tampering ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_altered_entry_is_found(subject):
    _read(subject, n=5)
    with tampering():
        AuditEntry.objects.filter(seq=3).update(action="profile.export")
    failure = audit_verify().failure
    assert failure is not None
    assert (failure.seq, failure.problem) == (3, Problem.ALTERED)


@pytest.mark.django_db
def test_values_smuggled_into_fields_in_the_same_canonical_shape_are_found(subject):
    """{"email": ..., "phone": ...} or "email\x1ephone" would join like ["email", "phone"]."""
    _read(subject, n=2)
    with tampering():
        AuditEntry.objects.filter(seq=1).update(fields={"email": SECRET, "phone": "+44 20 7946 0000"})
        AuditEntry.objects.filter(seq=2).update(fields=["email\x1ephone"])
    failure = audit_verify().failure
    assert failure is not None
    assert (failure.seq, failure.problem) == (1, Problem.ALTERED)
    with tampering():
        AuditEntry.objects.filter(seq=1).update(fields=["email", "phone"])
    failure = audit_verify().failure
    assert failure is not None
    assert (failure.seq, failure.problem) == (2, Problem.ALTERED)


@pytest.mark.django_db
def test_altered_details_ciphertext_is_found(subject):
    _read(subject, n=2, details={"k": "v"})
    with tampering():
        AuditEntry.objects.filter(seq=2).update(details=b"\x01forged")
    failure = audit_verify().failure
    assert failure is not None
    assert (failure.seq, failure.problem) == (2, Problem.ALTERED)


@pytest.mark.django_db
def test_a_removed_middle_entry_is_found(subject):
    _read(subject, n=5)
    with tampering():
        AuditEntry.objects.filter(seq=3).delete()
    failure = audit_verify().failure
    assert failure is not None
    assert (failure.seq, failure.problem) == (3, Problem.MISSING)
    assert "entry 3 is missing" in failure.reason


@pytest.mark.django_db
def test_a_removed_tail_is_found_through_the_head(subject):
    _read(subject, n=5)
    with tampering():
        AuditEntry.objects.filter(seq__gte=4).delete()
    failure = audit_verify().failure
    assert failure is not None
    assert (failure.seq, failure.problem) == (4, Problem.MISSING)


@pytest.mark.django_db
def test_a_relinked_chain_without_rehashing_is_found(subject):
    _read(subject, n=4)
    with tampering():
        AuditEntry.objects.filter(seq=3).delete()
        AuditEntry.objects.filter(seq=4).update(seq=3)
        AuditHead.objects.update(seq=3)
    failure = audit_verify().failure
    assert failure is not None
    assert (failure.seq, failure.problem) == (3, Problem.BROKEN_LINK)


@pytest.mark.django_db
def test_a_wrong_or_missing_head_is_found(subject):
    _read(subject, n=3)
    with tampering():
        AuditHead.objects.update(hash="f" * 64)
    failure = audit_verify().failure
    assert failure is not None
    assert (failure.seq, failure.problem) == (3, Problem.HEAD_MISMATCH)

    with tampering():
        AuditHead.objects.all().delete()
    failure = audit_verify().failure
    assert failure is not None
    assert failure.problem == Problem.HEAD_MISMATCH


@pytest.mark.django_db
def test_a_forged_entry_rehashed_consistently_is_caught_by_the_checkpoints(subject):
    _read(subject, n=2)
    audit_checkpoint_sign()
    _read(subject, n=3)
    audit_checkpoint_sign()
    with tampering():
        _rechain_from(4, insert_forged=True)

    # Every link and hash is consistent again: only the signed checkpoints can tell.
    failure = audit_verify().failure
    assert failure is not None
    assert (failure.seq, failure.problem) == (5, Problem.CHECKPOINT_MISMATCH)
    assert "entries 3..5 were rewritten" in failure.reason


@pytest.mark.django_db
def test_a_tail_cut_off_with_the_head_rolled_back_is_caught_by_a_checkpoint(subject):
    entries = _read(subject, n=5)
    audit_checkpoint_sign()
    with tampering():
        AuditEntry.objects.filter(seq__gte=4).delete()
        AuditHead.objects.update(seq=3, hash=entries[2].hash)
    failure = audit_verify().failure
    assert failure is not None
    assert (failure.seq, failure.problem) == (4, Problem.HEAD_BEHIND)
    assert "behind the checkpoint at entry 5" in failure.reason
    assert "entries 4..5 were cut off" in failure.reason


@pytest.mark.django_db
def test_a_checkpoint_with_a_bad_signature_or_another_key_is_found(subject, settings, tmp_path):
    _read(subject, n=3)
    checkpoint = audit_checkpoint_sign()
    assert audit_verify().ok
    with tampering():
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(hash="e" * 64)
    failure = audit_verify().failure
    assert failure is not None
    assert (failure.seq, failure.problem) == (3, Problem.CHECKPOINT_SIGNATURE)

    other_keys = tmp_path / "other-keys.json"
    write_key_file(other_keys, new_key_set(), overwrite=False)
    settings.VAULT_KEKS_FILE = str(other_keys)
    failure = audit_verify().failure
    assert failure is not None
    assert failure.problem == Problem.CHECKPOINT_KEY


@pytest.mark.django_db
def test_a_checkpoint_names_its_key_by_its_jwk_thumbprint(subject):
    _read(subject)
    checkpoint = audit_checkpoint_sign()
    assert checkpoint.key_fingerprint == jwk_thumbprint(get_provider().audit_verify_key())
    assert checkpoint_record(checkpoint)["key_fingerprint"] == checkpoint.key_fingerprint


@pytest.mark.django_db
def test_checkpoints_naming_their_key_the_legacy_way_still_verify(subject):
    """Checkpoints signed before keys were named by their JWK thumbprint name the audit key by
    the hex SHA-256 of its raw bytes: they still verify, and still catch a rewrite."""
    _read(subject, n=3)
    signing_key = get_provider().audit_signing_key()
    raw = signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    head = AuditHead.objects.get()
    signed_at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    # What was signed then, as it was signed: format, seq, head hash and time joined by \x1f.
    message = "\x1f".join(
        ("vault-audit-checkpoint/1", str(head.seq), head.hash, signed_at.isoformat(timespec="microseconds"))
    )
    AuditCheckpoint.objects.create(
        seq=head.seq,
        hash=head.hash,
        signed_at=signed_at,
        key_fingerprint=hashlib.sha256(raw).hexdigest(),
        signature=signing_key.sign(message.encode()),
    )
    _read(subject, n=2)
    audit_checkpoint_sign()  # verifies the chain, the legacy checkpoint included, before signing
    result = audit_verify()
    assert result.ok, result.failure
    assert result.checkpoints == 2
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "2 checkpoint(s) verified" in out.getvalue()

    with tampering():
        _rechain_from(2, insert_forged=True)
    failure = audit_verify().failure
    assert failure is not None
    assert (failure.seq, failure.problem) == (3, Problem.CHECKPOINT_MISMATCH)


@pytest.mark.django_db
def test_a_checkpoint_is_never_signed_over_a_broken_chain(subject):
    with pytest.raises(NothingToSign):
        audit_checkpoint_sign()
    _read(subject, n=2)
    with tampering():
        AuditEntry.objects.filter(seq=1).update(purpose="marketing")
    with pytest.raises(Exception, match="Not signing a broken chain"):
        audit_checkpoint_sign()
    assert not AuditCheckpoint.objects.exists()


# --- Commands ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_audit_verify_command_exit_codes_and_output(subject):
    entries = _read(subject, n=3)
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert out.getvalue().startswith(f"OK: 3 entries, head {entries[-1].hash}")

    with tampering():
        AuditEntry.objects.filter(seq=2).update(actor_id="someone-else")
    with pytest.raises(CommandError, match=r"^FAILED at entry 2: ") as excinfo:
        call_command("audit_verify", stdout=StringIO())
    assert excinfo.value.returncode == 1


@pytest.mark.django_db
def test_audit_checkpoint_command_signs_and_prints_the_head(subject):
    out = StringIO()
    call_command("audit_checkpoint", stdout=out)
    assert "nothing to sign" in out.getvalue()

    entries = _read(subject, n=2)
    out = StringIO()
    call_command("audit_checkpoint", stdout=out)
    record = json.loads(out.getvalue().splitlines()[-1])
    assert (record["seq"], record["hash"]) == (2, entries[-1].hash)
    assert AuditCheckpoint.objects.get().seq == 2
    verify_out = StringIO()
    call_command("audit_verify", stdout=verify_out)
    assert "1 checkpoint(s) verified" in verify_out.getvalue()


# --- Checkpoints exported outside the database ----------------------------------------------------
# Each attack below is one an outside tester made work against a verifier that only read the
# database's checkpoints: the attacker writes the database with the triggers off, deletes the
# checkpoint rows in the way, and the database alone then verifies. The exported copy does not.


@pytest.fixture
def sign(django_capture_on_commit_callbacks):
    """Sign a checkpoint and export it, as the command and the beat task do: the export runs when
    the checkpoint commits (the test's transaction never does, so the callbacks run here)."""

    def sign_and_export() -> AuditCheckpoint:
        with django_capture_on_commit_callbacks(execute=True):
            return audit_checkpoint_sign()

    return sign_and_export


def _verify_against(path) -> str:
    """`audit_verify --checkpoints path`: its output when it passes, CommandError when not."""
    out = StringIO()
    call_command("audit_verify", "--checkpoints", str(path), stdout=out)
    return out.getvalue()


def _rehash_from(seq: int, **changes) -> None:
    """Edit entry `seq` and re-hash it and every entry after it, head included, as someone able
    to compute hashes would (the triggers must be off)."""
    entries = list(AuditEntry.objects.filter(seq__gte=seq))
    for name, value in changes.items():
        setattr(entries[0], name, value)
    prev_hash = AuditEntry.objects.get(seq=seq - 1).hash if seq > 1 else AUDIT_GENESIS_HASH
    for entry in entries:
        entry.prev_hash = prev_hash
        entry.hash = prev_hash = audit_entry_hash(entry)
        entry.save()
    AuditHead.objects.update(seq=entries[-1].seq, hash=prev_hash)


@pytest.mark.django_db
def test_the_command_and_the_beat_task_export_each_checkpoint_as_they_sign_it(
    subject, checkpoint_sink, django_capture_on_commit_callbacks, caplog
):
    from vault.tasks import audit_checkpoint

    _read(subject, n=2)
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("audit_checkpoint", stdout=out)
    printed = json.loads(out.getvalue().splitlines()[-1])
    assert f"Exported to {checkpoint_sink}" in out.getvalue()
    _read(subject)
    with django_capture_on_commit_callbacks(execute=True):
        logged = audit_checkpoint()

    lines = [json.loads(line) for line in checkpoint_sink.read_text().splitlines()]
    assert lines == [printed, logged]
    assert [line["seq"] for line in lines] == [2, 3]
    assert lines == [checkpoint_record(c) for c in AuditCheckpoint.objects.all()]


@pytest.mark.django_db
def test_a_checkpoint_rolled_back_is_never_exported(subject, checkpoint_sink, django_capture_on_commit_callbacks):
    _read(subject)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        audit_checkpoint_sign()
        transaction.set_rollback(True)
    assert not checkpoint_sink.exists()


@pytest.mark.django_db
def test_an_honest_chain_verifies_against_its_exported_checkpoints(subject, sign, checkpoint_sink):
    _read(subject, n=2)
    sign()
    _read(subject, n=3)
    sign()
    entries = _read(subject, n=2)

    out = _verify_against(checkpoint_sink)
    assert out.startswith(f"OK: 7 entries, head {entries[-1].hash}, 2 checkpoint(s) verified")
    assert "2 exported checkpoint(s) matched (newest at entry 5)" in out
    assert "Entries 6..7 come after the newest exported checkpoint" in out
    result = audit_verify(exported=exported_checkpoints_read(checkpoint_sink))
    assert result.ok, result.failure
    assert (result.exported, result.newest_exported) == (2, 5)

    plain = StringIO()
    call_command("audit_verify", stdout=plain)
    assert "read from the database only" in plain.getvalue()


@pytest.mark.django_db
def test_a_directory_sink_gets_one_new_file_per_checkpoint(subject, sign, settings, tmp_path):
    exported = tmp_path / "write-once"
    exported.mkdir()
    settings.AUDIT_CHECKPOINT_SINK = str(exported)
    _read(subject)
    sign()
    _read(subject)
    sign()
    files = sorted(exported.iterdir())
    assert [f.name[:23] for f in files] == ["checkpoint-000000000001", "checkpoint-000000000002"]
    assert "2 exported checkpoint(s) matched" in _verify_against(exported)


@pytest.mark.django_db
def test_attack_a_chain_rewritten_and_checkpoint_rows_deleted(subject, sign, checkpoint_sink):
    _read(subject, n=5)
    sign()
    with tampering():
        _rechain_from(3, insert_forged=True)
        AuditCheckpoint.objects.all().delete()
    assert audit_verify().ok, "the database alone no longer tells"

    with pytest.raises(CommandError, match=r"^FAILED at entry 5: the chain differs from the exported checkpoint") as e:
        _verify_against(checkpoint_sink)
    assert "entries 1..5 were rewritten" in str(e.value)
    failure = audit_verify(exported=exported_checkpoints_read(checkpoint_sink)).failure
    assert failure is not None
    assert (failure.seq, failure.problem) == (5, Problem.CHECKPOINT_MISMATCH)


@pytest.mark.django_db
def test_a_deleted_checkpoint_row_alone_is_a_failure_not_zero_verified(subject, sign, checkpoint_sink):
    _read(subject, n=3)
    sign()
    with tampering():
        AuditCheckpoint.objects.all().delete()
    with pytest.raises(CommandError, match=r"^FAILED at entry 3: the checkpoint exported at entry 3 .* is not in"):
        _verify_against(checkpoint_sink)

    sign()  # a new one, then its row replaced by the older one's values under the same time
    with tampering():
        AuditCheckpoint.objects.update(hash=AuditEntry.objects.get(seq=2).hash)
    failure = audit_verify(exported=exported_checkpoints_read(checkpoint_sink)).failure
    assert failure is not None
    assert failure.problem in (Problem.CHECKPOINT_SIGNATURE, Problem.CHECKPOINT_MISSING)


@pytest.mark.django_db
def test_attack_b_tail_cut_after_the_newest_database_checkpoint_and_head_moved_back(subject, sign, checkpoint_sink):
    _read(subject, n=3)
    sign()
    entries = _read(subject, n=3)
    sign()
    with tampering():
        AuditCheckpoint.objects.filter(seq=6).delete()
        AuditEntry.objects.filter(seq__gte=5).delete()
        AuditHead.objects.update(seq=4, hash=entries[0].hash)
    assert audit_verify().ok, "the database alone no longer tells"

    with pytest.raises(CommandError, match=r"^FAILED at entry 5: the head is at entry 4, behind the exported") as e:
        _verify_against(checkpoint_sink)
    assert "checkpoint at entry 6" in str(e.value) and "entries 5..6 were cut off" in str(e.value)
    failure = audit_verify(exported=exported_checkpoints_read(checkpoint_sink)).failure
    assert failure is not None
    assert (failure.seq, failure.problem) == (5, Problem.HEAD_BEHIND)


@pytest.mark.django_db
def test_attack_b_head_moved_back_with_the_entries_left_in_place(subject, sign, checkpoint_sink):
    entries = _read(subject, n=4)
    sign()
    with tampering():
        AuditCheckpoint.objects.all().delete()
        AuditHead.objects.update(seq=2, hash=entries[1].hash)
    assert audit_verify().ok, "the database alone no longer tells"
    with pytest.raises(CommandError, match=r"^FAILED at entry 3: the head is at entry 2, behind the exported"):
        _verify_against(checkpoint_sink)


@pytest.mark.django_db
def test_attack_c_entries_edited_after_the_newest_database_checkpoint_and_rehashed(subject, sign, checkpoint_sink):
    _read(subject, n=3)
    sign()
    _read(subject, n=3)
    sign()
    with tampering():
        AuditCheckpoint.objects.filter(seq=6).delete()
        _rehash_from(5, action="profile.export", purpose="marketing")
    assert audit_verify().ok, "the database alone no longer tells"

    with pytest.raises(CommandError, match=r"^FAILED at entry 6: the chain differs from the exported checkpoint") as e:
        _verify_against(checkpoint_sink)
    assert "entries 4..6 were rewritten" in str(e.value)


@pytest.mark.django_db
def test_attack_c_an_entry_forged_after_the_newest_database_checkpoint(subject, sign, checkpoint_sink):
    _read(subject, n=3)
    sign()
    _read(subject, n=2)
    sign()
    with tampering():
        AuditCheckpoint.objects.filter(seq=5).delete()
        _rechain_from(4, insert_forged=True)
    assert audit_verify().ok, "the database alone no longer tells"
    with pytest.raises(CommandError, match=r"^FAILED at entry 5: the chain differs from the exported checkpoint"):
        _verify_against(checkpoint_sink)


@pytest.mark.django_db
def test_entries_after_the_newest_exported_checkpoint_are_not_protected(subject, sign, checkpoint_sink):
    """What docs/audit.md says plainly: someone able to write the database can cut or forge the
    entries after the newest exported checkpoint, and nothing can tell. Sign often."""
    _read(subject, n=3)
    sign()
    _read(subject, n=3)
    with tampering():
        _rehash_from(5, action="profile.export")
        AuditEntry.objects.filter(seq=6).delete()
        AuditHead.objects.update(seq=5, hash=AuditEntry.objects.get(seq=5).hash)
    out = _verify_against(checkpoint_sink)
    assert out.startswith("OK: 5 entries")
    assert "Entries 4..5 come after the newest exported checkpoint: only the chain protects them" in out


@pytest.mark.django_db
def test_an_exported_checkpoint_that_does_not_verify_is_a_failure(subject, sign, checkpoint_sink, tmp_path):
    _read(subject, n=2)
    sign()
    record = json.loads(checkpoint_sink.read_text())
    forged = tmp_path / "forged.jsonl"
    forged.write_text(json.dumps({**record, "hash": "e" * 64}) + "\n")
    with pytest.raises(CommandError, match=r"^FAILED at entry 2: the exported checkpoint signed at .* bad signature"):
        _verify_against(forged)

    other = new_key_set()
    signing_key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(other["audit_signing_key"]))
    signed_at = datetime.fromisoformat(record["signed_at"])
    message = "\x1f".join(
        ("vault-audit-checkpoint/1", "2", record["hash"], signed_at.isoformat(timespec="microseconds"))
    )
    forged.write_text(
        json.dumps(
            {
                **record,
                "key_fingerprint": jwk_thumbprint(signing_key.public_key()),
                "signature": base64.b64encode(signing_key.sign(message.encode())).decode(),
            }
        )
    )
    with pytest.raises(CommandError, match=r"^FAILED at entry 2: the exported checkpoint .* not the audit key"):
        _verify_against(forged)


@pytest.mark.django_db
def test_an_unreadable_or_empty_export_is_a_failure(subject, sign, checkpoint_sink, tmp_path):
    _read(subject)
    with pytest.raises(CommandError, match=r"^FAILED: .* does not exist"):
        _verify_against(checkpoint_sink)
    checkpoint_sink.write_text("\n")
    with pytest.raises(CommandError, match="holds no checkpoints: nothing outside the database vouches"):
        _verify_against(checkpoint_sink)
    sign()
    with checkpoint_sink.open("a") as sink:
        sink.write('{"seq": 1, "hash": "abc"}\n')
    with pytest.raises(CommandError, match=r"exported-checkpoints.jsonl:3 is not a signed checkpoint record: hash"):
        _verify_against(checkpoint_sink)


def test_a_failed_export_is_reported_and_the_checkpoint_kept(committed_db, subject, settings, tmp_path, caplog):
    """Committed for real (no test transaction around it), so the export runs as in production:
    right after the checkpoint commits, inside the command and the task."""
    from vault.tasks import audit_checkpoint

    settings.AUDIT_CHECKPOINT_SINK = str(tmp_path / "not-mounted" / "checkpoints.jsonl")
    _read(subject)
    out = StringIO()
    with pytest.raises(CommandError, match=r"Checkpoint at entry 1 was signed, but not exported to .*not-mounted"):
        call_command("audit_checkpoint", stdout=out)
    assert AuditCheckpoint.objects.count() == 1
    assert json.loads(out.getvalue())["seq"] == 1, "the record is printed, to be copied by hand"
    assert not (tmp_path / "not-mounted").exists(), "no local directory made in place of a missing mount"

    with caplog.at_level("ERROR", logger="vault.audit.checkpoints"), pytest.raises(CheckpointExportFailed):
        audit_checkpoint()
    assert "not exported" in caplog.text
    assert AuditCheckpoint.objects.count() == 2


@pytest.mark.django_db
def test_without_a_sink_the_command_says_the_checkpoint_is_in_the_database_only(subject, settings):
    settings.AUDIT_CHECKPOINT_SINK = ""
    _read(subject)
    err = StringIO()
    call_command("audit_checkpoint", stdout=StringIO(), stderr=err)
    assert "AUDIT_CHECKPOINT_SINK is not set" in err.getvalue()
    assert AuditCheckpoint.objects.count() == 1


# --- PostgreSQL: the append-only trigger and concurrent writers --------------------------------


@postgres_only
@pytest.mark.django_db
def test_the_trigger_refuses_update_delete_and_truncate(subject):
    _read(subject, n=2)
    audit_checkpoint_sign()
    with pytest.raises(DatabaseError, match="audit log is append-only"), transaction.atomic():
        AuditEntry.objects.filter(seq=1).update(action="profile.export")
    with pytest.raises(DatabaseError, match="audit log is append-only"), transaction.atomic():
        AuditEntry.objects.filter(seq=2).delete()
    for table in APPEND_ONLY_TABLES:
        with (
            pytest.raises(DatabaseError, match="audit log is append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(f"TRUNCATE {table}")
    with pytest.raises(DatabaseError, match="audit log is append-only"), transaction.atomic():
        AuditCheckpoint.objects.update(hash="0" * 64)

    AuditHead.objects.update(seq=2)  # a no-op update of the head is let through
    assert audit_verify().ok


@postgres_only
@pytest.mark.django_db
def test_the_head_only_moves_forward_to_an_entry_that_exists_with_its_hash(subject):
    """Without disabling triggers (what the application's database role, or an injected
    statement, can do), the head cannot be set back, nor to an entry or hash that does not exist."""
    entries = _read(subject, n=3)
    refused = [
        ({"seq": 2, "hash": entries[1].hash}, "audit head only moves forward"),  # back, consistently
        ({"seq": 3, "hash": "f" * 64}, "audit head only moves forward"),  # same place, other hash
        ({"seq": 4, "hash": entries[2].hash}, "must name an existing entry"),  # ahead of the log
        ({"seq": 0, "hash": AUDIT_GENESIS_HASH}, "audit head only moves forward"),
    ]
    for change, message in refused:
        with pytest.raises(DatabaseError, match=message), transaction.atomic():
            AuditHead.objects.update(**change)
    with pytest.raises(DatabaseError, match="audit head only moves forward"), transaction.atomic():
        AuditHead.objects.all().delete()
    with (
        pytest.raises(DatabaseError, match="audit head only moves forward"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE vault_audithead")

    # An entry inserted by hand (INSERT is allowed) must carry the right hash to be the head.
    forged = AuditEntry(
        seq=4,
        created_at=entries[2].created_at,
        actor_type="system",
        actor_id="mallory",
        action="profile.read",
        prev_hash=entries[2].hash,
    )
    forged.hash = audit_entry_hash(forged)
    forged.save(force_insert=True)
    with pytest.raises(DatabaseError, match="must name an existing entry"), transaction.atomic():
        AuditHead.objects.update(seq=4, hash="e" * 64)
    AuditHead.objects.update(seq=4, hash=forged.hash)  # forward, to what is there: allowed

    assert AuditHead.objects.get().seq == 4
    _read(subject, n=2)  # appends still move it, one by one and in bulk
    audit_record_many(actor_type="system", actor_id="export", action="profile.read", subject_ids=[uuid.uuid4()])
    assert AuditHead.objects.get().seq == 7
    assert audit_verify().ok


@postgres_only
@pytest.mark.django_db
def test_the_trigger_lets_an_empty_table_be_truncated():
    """Django's test runner empties every table with one TRUNCATE after a transactional test."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(AUDIT_TABLES)}")


@postgres_only
def test_concurrent_appends_are_serialized_into_one_intact_chain(committed_db) -> None:
    threads_count, per_thread = 8, 25
    shared_subject = uuid.uuid4()
    start = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(per_thread):
                audit_record(
                    actor_type="system",
                    actor_id=f"worker-{worker}",
                    action="profile.read",
                    fields=["email"],
                    subject_id=shared_subject,  # also races on the pseudonym and the data key
                    details={"i": i} if i % 5 == 0 else None,
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=append, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors

    total = threads_count * per_thread
    result = audit_verify(batch_size=64)
    assert result.ok, result.failure
    assert (result.entries, result.head_seq) == (total, total)
    assert list(AuditEntry.objects.values_list("seq", flat=True)) == list(range(1, total + 1))
    assert AuditPseudonym.objects.filter(subject_id=shared_subject).count() == 1


@pytest.mark.django_db
def test_the_periodic_checkpoint_task_signs_and_logs_the_head(caplog):
    from vault.tasks import audit_checkpoint

    assert audit_checkpoint() is None, "nothing to sign in an empty log"
    audit_record(actor_type="system", actor_id="test", action="profile.read")
    with caplog.at_level("INFO", logger="vault.audit.checkpoints"):
        record = audit_checkpoint()
    assert record["seq"] == 1
    assert AuditCheckpoint.objects.count() == 1
    assert json.dumps(record, sort_keys=True) in caplog.text
    assert audit_verify().checkpoints == 1


@pytest.mark.django_db
def test_a_person_acting_is_never_named_by_their_id(subject):
    with pytest.raises(InvalidAuditEntry, match="actor_subject_id"):
        audit_record(actor_type="person", actor_id=str(subject), action="consent.grant")
    with pytest.raises(InvalidAuditEntry, match="actor_subject_id"):
        audit_record(actor_type="staff", actor_subject_id=subject, action="consent.grant")
    assert not AuditEntry.objects.exists()
