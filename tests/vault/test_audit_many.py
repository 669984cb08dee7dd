"""`audit_record_many`: one entry per subject of a bulk read, chained like `audit_record`'s, in
a fixed number of queries (vault/audit/, docs/audit.md)."""

import itertools
import threading
import time
import uuid

import pytest
from django.db import close_old_connections, connection, transaction
from django.test.utils import CaptureQueriesContext

from vault.audit import (
    InvalidAuditEntry,
    audit_entry_hash,
    audit_pseudonym_for,
    audit_pseudonym_unlink,
    audit_record,
    audit_record_many,
    audit_verify,
)
from vault.crypto import SubjectErased, subject_shred
from vault.log import request_id_var
from vault.models import AUDIT_GENESIS_HASH, AuditEntry, AuditHead, AuditPseudonym

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="concurrent appends need PostgreSQL (set DATABASE_URL=postgres://...)",
)
SECRET = "ada.lovelace@example.com"


def _people(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


def _bulk_read(subject_ids=(), **overrides) -> int:
    kwargs = {
        "actor_type": "partner",
        "actor_id": "client-0001",
        "action": "profile.read",
        "purpose": "delivery",
        "fields": ["email", "address"],
        "subject_ids": subject_ids,
        "request_id": "req-bulk",
    }
    return audit_record_many(**{**kwargs, **overrides})


def _single_read(subject_id, **overrides) -> AuditEntry:
    kwargs = {
        "actor_type": "staff",
        "actor_id": "7d0c2c9e-staff",
        "action": "profile.read",
        "purpose": "support",
        "fields": ["email"],
        "subject_id": subject_id,
        "request_id": "req-single",
    }
    return audit_record(**{**kwargs, **overrides})


def _assert_chain_intact(expected_entries: int) -> None:
    result = audit_verify(batch_size=7)
    assert result.ok, result.failure
    assert (result.entries, result.head_seq) == (expected_entries, expected_entries)


# --- Chaining ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_bulk_entries_chain_with_single_ones_and_verify():
    people = _people(5)
    _single_read(people[0])
    assert _bulk_read(people) == 5
    _single_read(people[1])
    assert _bulk_read(people[2:]) == 3
    _single_read(None)

    entries = list(AuditEntry.objects.order_by("seq"))
    assert [e.seq for e in entries] == list(range(1, 12))
    assert entries[0].prev_hash == AUDIT_GENESIS_HASH
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(entries))
    assert all(audit_entry_hash(e) == e.hash for e in entries), "the same canonical form as audit_record"
    assert AuditHead.objects.get().seq == 11
    assert AuditHead.objects.get().hash == entries[-1].hash
    _assert_chain_intact(11)


@pytest.mark.django_db
def test_bulk_entries_record_the_event_once_per_subject_in_the_order_given():
    people = _people(4)
    assert _bulk_read([people[2], people[0], people[2], people[3], people[1], people[0]]) == 4

    entries = list(AuditEntry.objects.order_by("seq"))
    pseudonyms = {link.subject_id: link.pseudonym for link in AuditPseudonym.objects.all()}
    assert [e.subject_pseudonym for e in entries] == [
        pseudonyms[p] for p in (people[2], people[0], people[3], people[1])
    ]
    first = entries[0]
    for entry in entries:
        assert (entry.actor_type, entry.actor_id, entry.action) == ("partner", "client-0001", "profile.read")
        assert (entry.purpose, entry.fields, entry.request_id) == ("delivery", ["email", "address"], "req-bulk")
        assert entry.details is None
        assert entry.created_at == first.created_at, "one event, one time"
    _assert_chain_intact(4)


# --- Pseudonyms --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_subject_gets_their_own_pseudonym_the_same_audit_record_gives():
    known, new, later = _people(3)
    known_entry = _single_read(known)  # already has a pseudonym
    _bulk_read([known, new, later])
    later_entry = _single_read(later)  # made by the bulk append

    bulk = list(AuditEntry.objects.filter(seq__in=[2, 3, 4]).order_by("seq"))
    assert len({e.subject_pseudonym for e in bulk}) == 3
    assert bulk[0].subject_pseudonym == known_entry.subject_pseudonym
    assert bulk[1].subject_pseudonym == audit_pseudonym_for(new)
    assert bulk[2].subject_pseudonym == later_entry.subject_pseudonym
    assert all(e.subject_pseudonym not in (known, new, later) for e in bulk), "never the subject's id"
    assert AuditPseudonym.objects.count() == 3, "one link per subject, none made twice"


@pytest.mark.django_db
def test_a_person_acting_is_recorded_by_their_pseudonym():
    reader, *people = _people(3)
    _bulk_read(people, actor_type="person", actor_id="", actor_subject_id=reader)
    _bulk_read([reader, *people], actor_type="person", actor_id="", actor_subject_id=reader)  # themselves too

    pseudonym = str(audit_pseudonym_for(reader))
    assert set(AuditEntry.objects.values_list("actor_id", flat=True)) == {pseudonym}
    assert audit_record(actor_type="person", actor_subject_id=reader, action="profile.read").actor_id == pseudonym
    _assert_chain_intact(6)


@pytest.mark.django_db
def test_no_pseudonym_is_made_again_for_an_erased_subject():
    kept, erased = _people(2)
    _single_read(erased)
    subject_shred(erased)
    audit_pseudonym_unlink(erased)

    with pytest.raises(SubjectErased), transaction.atomic():
        _bulk_read([kept, erased])
    assert AuditEntry.objects.count() == 1
    assert not AuditPseudonym.objects.exists(), "nothing was made, not even for the other subject"
    assert _bulk_read([kept]) == 1
    _assert_chain_intact(2)


# --- Queries -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("larger", [50, 2000])  # 2,000: more than SQLite's old 999-parameter limit
def test_the_number_of_queries_does_not_grow_with_the_subjects(django_assert_num_queries, larger):
    _single_read(None)  # the head exists, as it does on a running system
    # New people: read, make the missing pseudonyms, insert (PostgreSQL moves the head in the
    # same statement), plus the head lock.
    with CaptureQueriesContext(connection) as few:
        _bulk_read(_people(3))
    assert len(few) == (4 if connection.vendor == "postgresql" else 5), [q["sql"][:80] for q in few]
    with django_assert_num_queries(len(few)):
        _bulk_read(_people(larger))

    # People read before: no pseudonym to make, one query less.
    people = _people(larger)
    _bulk_read(people[:3])
    _bulk_read(people)
    with CaptureQueriesContext(connection) as few_known:
        _bulk_read(people[:3])
    assert len(few_known) == len(few) - 1
    with django_assert_num_queries(len(few_known)):
        _bulk_read(people)
    _assert_chain_intact(1 + 3 + larger + 3 + larger + 3 + larger)


# --- Validation, empty lists, transactions -----------------------------------------------------


@pytest.mark.django_db
def test_invalid_events_are_refused_and_nothing_is_written():
    people = _people(2)
    with pytest.raises(InvalidAuditEntry) as excinfo:
        _bulk_read(people, fields=[SECRET])
    assert SECRET not in str(excinfo.value), "a rejected value is not echoed into an error either"
    cases = [
        ({"actor_id": SECRET}, "never an email"),
        ({"actor_type": "robot"}, "actor_type"),
        ({"action": "Profile Read"}, "action"),
        ({"purpose": "a\x1fb"}, "control characters"),
        ({"request_id": "r" * 65}, "request_id"),
        ({"actor_type": "person"}, "actor_subject_id"),  # a person given by id
        ({"actor_subject_id": people[0]}, "actor_subject_id"),  # a subject who is not a person
        ({"actor_type": "person", "actor_subject_id": people[0]}, "actor_subject_id only"),
        ({"subject_ids": [str(people[0])]}, "UUIDs"),
        ({"subject_ids": str(people[0])}, "UUIDs"),
        ({"subject_ids": [people[0], None]}, "UUIDs"),
    ]
    for overrides, message in cases:
        with pytest.raises(InvalidAuditEntry, match=message):
            _bulk_read(**{"subject_ids": people, **overrides})
    assert not AuditEntry.objects.exists()
    assert not AuditPseudonym.objects.exists()


@pytest.mark.django_db
def test_an_empty_list_writes_nothing():
    reader = uuid.uuid4()
    assert _bulk_read([]) == 0
    assert _bulk_read((), actor_type="person", actor_id="", actor_subject_id=reader) == 0
    assert not AuditEntry.objects.exists()
    assert not AuditHead.objects.exists()
    assert not AuditPseudonym.objects.exists(), "not even the actor's pseudonym"
    with pytest.raises(InvalidAuditEntry):
        _bulk_read([], action="not an action")  # an empty list does not excuse a bad event


@pytest.mark.django_db
def test_the_request_id_defaults_to_the_current_one():
    token = request_id_var.set("req-abcdef123456")
    try:
        audit_record_many(actor_type="system", actor_id="export", action="profile.read", subject_ids=_people(2))
    finally:
        request_id_var.reset(token)
    assert set(AuditEntry.objects.values_list("request_id", flat=True)) == {"req-abcdef123456"}


@pytest.mark.django_db
def test_bulk_entries_roll_back_with_the_action_they_record():
    people = _people(3)
    _single_read(people[0])

    def bulk_read_that_fails_after_recording() -> None:
        with transaction.atomic():
            _bulk_read(people)
            raise RuntimeError("the read failed")

    with pytest.raises(RuntimeError):
        bulk_read_that_fails_after_recording()
    assert AuditEntry.objects.count() == 1
    assert AuditHead.objects.get().seq == 1
    assert AuditPseudonym.objects.count() == 1, "the pseudonyms made went with it"
    assert _bulk_read(people) == 3
    assert AuditEntry.objects.get(seq=2).subject_pseudonym == audit_pseudonym_for(people[0])
    _assert_chain_intact(4)


# --- PostgreSQL: concurrent writers ------------------------------------------------------------


@postgres_only
def test_concurrent_single_and_bulk_appends_make_one_intact_chain(committed_db) -> None:
    """Single and bulk appends and pseudonym lookups outside the head lock, on the same people."""
    people = _people(40)
    workers, rounds = 6, 10
    start = threading.Barrier(workers + 1)
    errors: list[BaseException] = []
    written = [0] * workers

    def append(worker: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(rounds):
                if worker % 2:
                    offset = (worker * 7 + i * 3) % len(people)
                    written[worker] += _bulk_read((people * 2)[offset : offset + 15], actor_id=f"client-{worker}")
                else:
                    _single_read(people[(worker + i * 5) % len(people)], actor_id=f"staff-{worker}")
                    written[worker] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def look_up() -> None:  # audit_pseudonym_for, as erasure and person actors use it: no head lock
        try:
            start.wait(timeout=30)
            for person in reversed(people):
                audit_pseudonym_for(person)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=append, args=(n,)) for n in range(workers)]
    threads.append(threading.Thread(target=look_up))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors

    total = sum(written)
    assert total == (workers // 2) * rounds * (15 + 1)
    _assert_chain_intact(total)
    assert list(AuditEntry.objects.values_list("seq", flat=True)) == list(range(1, total + 1))
    links = dict(AuditPseudonym.objects.values_list("subject_id", "pseudonym"))
    assert set(links) == set(people), "one pseudonym per person, none made twice"
    assert set(AuditEntry.objects.values_list("subject_pseudonym", flat=True)) == set(links.values())


@postgres_only
def test_a_pseudonym_made_meanwhile_outside_the_head_lock_is_used_not_duplicated(committed_db) -> None:
    """The bulk insert finds another transaction's uncommitted pseudonym for a subject, waits
    for it to commit, keeps it (ON CONFLICT DO NOTHING) and reads it back."""
    person, other = _people(2)
    made = threading.Event()
    errors: list[BaseException] = []

    def make_and_hold() -> None:
        try:
            with transaction.atomic():
                AuditPseudonym.objects.create(subject_id=person)
                made.set()
                time.sleep(0.5)  # the bulk append reads, finds none, and waits on this row
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    holder = threading.Thread(target=make_and_hold)
    holder.start()
    assert made.wait(timeout=10)
    with CaptureQueriesContext(connection) as queries:
        assert _bulk_read([other, person]) == 2
    holder.join(timeout=30)
    assert not errors, errors
    on_links = [q["sql"] for q in queries if AuditPseudonym._meta.db_table in q["sql"]]
    assert len(on_links) == 3, "read, make the missing (one kept instead), read the kept one again"

    assert AuditPseudonym.objects.filter(subject_id=person).count() == 1
    kept = AuditPseudonym.objects.get(subject_id=person).pseudonym
    assert AuditEntry.objects.get(seq=2).subject_pseudonym == kept
    _assert_chain_intact(2)
