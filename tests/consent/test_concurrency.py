"""Concurrent grants and withdrawals for one person and purpose end consistent: every choice is in
the ledger once, numbered without gaps, and the projection is the last of them (PostgreSQL)."""

import itertools
import threading

import pytest
from django.db import connection

from consent.models import STATUS_AFTER, ConsentEvent, ConsentState, EventType, Method
from consent.selectors import consent_is_granted
from consent.services import consent_grant, consent_projection_rebuild, consent_withdraw
from vault.audit import audit_verify
from vault.models import AuditEntry

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="serializing concurrent writers needs PostgreSQL row locks (set DATABASE_URL=postgres://...)",
)


@pytest.mark.slow
@postgres_only
def test_concurrent_grants_and_withdrawals_for_one_person_end_consistent(committed_db, make_purpose, alice):
    make_purpose("newsletter")
    workers, per_worker = 8, 12
    start = threading.Barrier(workers)
    errors = []

    def choose(worker):
        try:
            start.wait(timeout=30)  # all race for the first projection row, too
            for i in range(per_worker):
                record = consent_grant if (worker + i) % 2 == 0 else consent_withdraw
                record(subject_id=alice.id, purpose="newsletter", method=Method.API)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=choose, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors

    total = workers * per_worker
    events = list(ConsentEvent.objects.filter(subject_id=alice.id).order_by("seq"))
    assert [event.seq for event in events] == list(range(1, total + 1))
    times = [event.occurred_at for event in events]
    assert times == sorted(times), "events are numbered in the order they happened"
    state = ConsentState.objects.get(subject_id=alice.id)
    assert state.last_seq == total
    assert state.status == STATUS_AFTER[events[-1].event_type]
    assert consent_is_granted(subject_id=alice.id, purpose="newsletter") == (
        events[-1].event_type in {EventType.GRANT, EventType.RENEW}
    )
    # A grant directly after a grant is a renewal: the types agree with the order.
    for before, after in itertools.pairwise(events):
        if after.event_type in {EventType.GRANT, EventType.RENEW}:
            expected = EventType.RENEW if before.event_type in {EventType.GRANT, EventType.RENEW} else EventType.GRANT
            assert after.event_type == expected
    assert consent_projection_rebuild(dry_run=True).in_step
    assert AuditEntry.objects.filter(action__startswith="consent.").count() == total
    assert audit_verify().ok
