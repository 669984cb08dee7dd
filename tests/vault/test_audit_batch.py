"""`audit_record_batch`: one chained entry about a batch of people, naming them in
`AuditEntrySubject` rows whose digest the entry's hash covers (vault/audit/, docs/audit.md)."""

import uuid

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.factories import set_audit_triggers
from vault.audit import (
    InvalidAuditEntry,
    Problem,
    audit_entry_hash,
    audit_pseudonym_for,
    audit_pseudonym_unlink,
    audit_record,
    audit_record_batch,
    audit_verify,
)
from vault.audit.canonical import subjects_digest
from vault.audit.selectors import audit_entries_about
from vault.crypto import SubjectErased, subject_shred
from vault.models import AuditEntry, AuditEntrySubject, AuditHead, AuditPseudonym

pytestmark = pytest.mark.django_db


def _people(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


def _batch_read(subject_ids, **overrides) -> AuditEntry | None:
    kwargs = {
        "actor_type": "partner",
        "actor_id": "client-0001",
        "action": "profile.read",
        "purpose": "delivery",
        "fields": ["email", "address"],
        "subject_ids": subject_ids,
        "request_id": "req-batch",
    }
    return audit_record_batch(**{**kwargs, **overrides})


def _named(entry: AuditEntry) -> set[uuid.UUID]:
    return set(AuditEntrySubject.objects.filter(entry_seq=entry.seq).values_list("subject_pseudonym", flat=True))


SUBJECTS, ENTRIES = AuditEntrySubject._meta.db_table, AuditEntry._meta.db_table


def _tamper(sql: str, params: list) -> None:
    """What an attacker with the owner's rights does: switch the triggers off, then write
    (`sql` names the tables as {subjects} and {entries})."""
    set_audit_triggers(enabled=False)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql.format(subjects=SUBJECTS, entries=ENTRIES), params)
    finally:
        set_audit_triggers(enabled=True)


def _pseudonym_param(pseudonym: uuid.UUID):
    return pseudonym if connection.vendor == "postgresql" else pseudonym.hex


def test_one_entry_names_the_batch_by_pseudonym_and_chains():
    people = _people(4)
    audit_record(actor_type="system", actor_id="job", action="vault.start")
    entry = _batch_read([*people, people[0]])  # a subject given twice is named once

    assert entry is not None and AuditEntry.objects.count() == 2
    stored = AuditEntry.objects.get(seq=entry.seq)
    assert stored.subject_pseudonym is None
    assert _named(stored) == {audit_pseudonym_for(p) for p in people}
    assert not AuditEntrySubject.objects.filter(subject_pseudonym__in=people).exists(), "never the subject's id"
    assert stored.subjects_digest == subjects_digest([audit_pseudonym_for(p).hex for p in people])
    assert audit_entry_hash(stored) == stored.hash and stored.prev_hash == AuditEntry.objects.get(seq=1).hash
    assert AuditHead.objects.get().hash == stored.hash
    audit_record(actor_type="system", actor_id="job", action="vault.stop")
    result = audit_verify(batch_size=2)
    assert result.ok, result.failure
    assert result.entries == 3


def test_a_batch_of_one_is_the_plain_entry_and_none_writes_nothing():
    (alone,) = _people(1)
    assert _batch_read([]) is None and not AuditEntry.objects.exists()
    entry = _batch_read([alone])
    assert entry.subject_pseudonym == audit_pseudonym_for(alone)
    assert entry.subjects_digest == "" and not AuditEntrySubject.objects.exists()
    assert audit_verify().ok


def test_each_persons_access_log_finds_the_batch_entry():
    alice, bob, carol = _people(3)
    audit_record(actor_type="partner", actor_id="client-0001", action="profile.read", subject_id=alice)
    _batch_read([alice, bob], purpose="personalization")
    audit_record(actor_type="partner", actor_id="client-0002", action="profile.read", subject_id=carol)

    mine = audit_entries_about(subject_id=alice).object_list
    assert [(e.actor_name, e.purpose) for e in mine] == [("client-0001", "personalization"), ("client-0001", "")]
    assert mine[0].fields == ["email", "address"]
    assert [e.purpose for e in audit_entries_about(subject_id=bob).object_list] == ["personalization"]
    assert [e.actor_name for e in audit_entries_about(subject_id=carol).object_list] == ["client-0002"]
    page = audit_entries_about(subject_id=alice, per_page=1)
    assert page.paginator.count == 2 and page.has_next()


def test_a_person_acting_is_recorded_by_pseudonym():
    actor, *people = _people(3)
    entry = _batch_read(people, actor_type="person", actor_id="", actor_subject_id=actor)
    assert entry.actor_id == str(audit_pseudonym_for(actor))
    with pytest.raises(InvalidAuditEntry):
        _batch_read(people, actor_type="person", actor_id="")
    with pytest.raises(InvalidAuditEntry):
        _batch_read(people, fields=["Ada Lovelace"])


def test_an_erased_subject_fails_the_whole_batch():
    kept, erased = _people(2)
    subject_shred(erased)
    with pytest.raises(SubjectErased), transaction.atomic():
        _batch_read([kept, erased])
    assert not AuditEntry.objects.exists() and not AuditEntrySubject.objects.exists()
    assert not AuditPseudonym.objects.exists(), "nothing was made, not even for the other subject"


def test_erasure_leaves_the_batch_verifiable_and_anonymous():
    """The tombstone rule of every entry: unlinking the pseudonym cuts the rows from the person,
    who then has no access log; the others keep theirs, and the chain still verifies."""
    alice, bob = _people(2)
    entry = _batch_read([alice, bob])
    pseudonym = audit_pseudonym_for(alice)
    assert audit_pseudonym_unlink(alice)

    assert _named(entry) == {pseudonym, audit_pseudonym_for(bob)}, "the rows stay, naming a pseudonym of no one"
    assert not AuditPseudonym.objects.filter(pseudonym=pseudonym).exists()
    assert audit_entries_about(subject_id=alice).paginator.count == 0
    assert audit_entries_about(subject_id=bob).paginator.count == 1
    assert audit_verify().ok


def test_verify_finds_a_named_person_removed():
    entry = _batch_read(_people(3))
    audit_record(actor_type="system", actor_id="job", action="vault.stop")
    victim = sorted(_named(entry))[1]
    _tamper(
        "DELETE FROM {subjects} WHERE entry_seq = %s AND subject_pseudonym = %s", [entry.seq, _pseudonym_param(victim)]
    )
    failure = audit_verify().failure
    assert failure is not None and (failure.seq, failure.problem) == (entry.seq, Problem.SUBJECTS)


def test_verify_finds_all_named_people_removed():
    entry = _batch_read(_people(2))
    _tamper("DELETE FROM {subjects} WHERE entry_seq = %s", [entry.seq])
    failure = audit_verify().failure
    assert failure is not None and (failure.seq, failure.problem) == (entry.seq, Problem.SUBJECTS)


def test_verify_finds_a_named_person_changed():
    """Swapping one person for another (to hide who was read) changes the digest."""
    entry = _batch_read(_people(3))
    victim, other = sorted(_named(entry))[0], audit_pseudonym_for(uuid.uuid4())
    _tamper(
        "UPDATE {subjects} SET subject_pseudonym = %s WHERE entry_seq = %s AND subject_pseudonym = %s",
        [_pseudonym_param(other), entry.seq, _pseudonym_param(victim)],
    )
    failure = audit_verify().failure
    assert failure is not None and (failure.seq, failure.problem) == (entry.seq, Problem.SUBJECTS)


@pytest.mark.parametrize("target", ["batch", "single"])
def test_verify_finds_a_person_added(target):
    """A row added to a batch entry, or to an entry that names no batch, is found too."""
    batch = _batch_read(_people(2))
    single = audit_record(actor_type="system", actor_id="job", action="vault.stop")
    seq = batch.seq if target == "batch" else single.seq
    _tamper(
        "INSERT INTO {subjects} (entry_seq, subject_pseudonym) VALUES (%s, %s)",
        [seq, _pseudonym_param(audit_pseudonym_for(uuid.uuid4()))],
    )
    failure = audit_verify().failure
    assert failure is not None and (failure.seq, failure.problem) == (seq, Problem.SUBJECTS)


def test_verify_finds_the_digest_altered_in_the_entry():
    entry = _batch_read(_people(2))
    _tamper(
        "UPDATE {entries} SET subjects_digest = %s WHERE seq = %s",
        ["0" * 64, entry.seq],
    )
    failure = audit_verify().failure
    assert failure is not None and (failure.seq, failure.problem) == (entry.seq, Problem.ALTERED)


def test_a_batch_costs_the_same_queries_for_any_number_of_people():
    def queries(n: int) -> int:
        people = _people(n)
        for person in people:
            audit_pseudonym_for(person)  # known people: the export's steady state
        with CaptureQueriesContext(connection) as captured:
            _batch_read(people)
        return len(captured)

    audit_record(actor_type="system", actor_id="job", action="vault.start")  # the head row is made
    assert queries(2) == queries(50) == queries(500)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the append-only trigger is PostgreSQL's")
def test_postgresql_refuses_to_change_or_remove_named_people():
    entry = _batch_read(_people(2))
    for sql in ("UPDATE {} SET entry_seq = entry_seq + 1", "DELETE FROM {}", "TRUNCATE {}"):
        with (
            pytest.raises(DatabaseError, match="audit log is append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql.format(SUBJECTS))
    assert len(_named(entry)) == 2
    assert audit_verify().ok
