"""The audit log: what one `audit_record` costs a request, what `audit_record_many` costs a bulk
read of 10,000 people, and how fast `audit_verify` walks a large chain (DESIGN.md 2b)."""

import itertools
import os
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from bench.harness import Figure, time_each
from vault.audit import HEAD_ID, audit_entry_hash, audit_record, audit_record_batch, audit_record_many, audit_verify
from vault.crypto import key_scope
from vault.models import AUDIT_GENESIS_HASH, AuditEntry, AuditHead


def _append_figures(label: str, samples: list[float]) -> list[Figure]:
    ordered = sorted(samples)
    return [
        Figure(f"{label} p50", ordered[len(ordered) // 2] * 1000, "ms"),
        Figure(f"{label} p95", ordered[int(len(ordered) * 0.95)] * 1000, "ms"),
        Figure(f"{label} mean", sum(samples) / len(samples) * 1000, "ms", at_most=2.0),
    ]


def bench_audit_append(appends: int = 2000) -> list[Figure]:
    subjects = [uuid.uuid4() for _ in range(50)]
    counter = itertools.count()

    def append(*, details: bool) -> None:
        n = next(counter)
        audit_record(
            actor_type="staff",
            actor_id="bench-staff-0001",
            action="profile.read",
            purpose="support",
            fields=["email", "phone", "address"],
            subject_id=subjects[n % len(subjects)],
            details={"ticket": f"T-{n}", "reason": "bench"} if details else None,
            request_id=f"bench-{n:012d}",
        )

    plain = time_each(lambda: append(details=False), repeat=appends)
    # A request runs inside one key scope, so the subject's audit key is unwrapped once there.
    with key_scope():
        detailed = time_each(lambda: append(details=True), repeat=appends // 4)
    return [
        *_append_figures(f"audit_record ({appends} appends)", plain),
        *_append_figures(f"audit_record + encrypted details ({appends // 4})", detailed),
    ]


def bench_audit_record_many(people: int = 10_000, rounds: int = 5) -> list[Figure]:
    """A bulk read's audit: one entry per person read (the profile access gate reads 10,000
    people at 20,000 people/s or more, and may spend about 100 ms of that on its audit)."""
    return _bulk_audit_figures("audit_record_many", audit_record_many, people, rounds)


def bench_audit_record_batch(people: int = 10_000, rounds: int = 5) -> list[Figure]:
    """The same bulk read audited as one entry naming the people (what `profile_read_many`
    writes): against `audit_record_many` above."""
    return _bulk_audit_figures("audit_record_batch", audit_record_batch, people, rounds)


def _bulk_audit_figures(name: str, record: Callable[..., object], people: int, rounds: int) -> list[Figure]:
    batches = iter([[uuid.uuid4() for _ in range(people)] for _ in range(rounds + 1)])
    subjects = next(batches)

    def bulk_read(subject_ids: list[uuid.UUID]) -> None:
        record(
            actor_type="partner",
            actor_id="bench-client-0001",
            action="profile.read",
            purpose="delivery",
            fields=["email", "phone", "address"],
            subject_ids=subject_ids,
            request_id="bench-bulk-read",
        )

    # People read for the first time: their audit pseudonyms are made too (once per person).
    first = time_each(lambda: bulk_read(next(batches)), repeat=rounds, warmup=0)
    bulk_read(subjects)
    again = time_each(lambda: bulk_read(subjects), repeat=rounds, warmup=1)
    mean = sum(again) / len(again)
    budget = 100.0 if connection.vendor == "postgresql" else None  # the budget is PostgreSQL's
    label = f"{name} ({people:,} people)"
    return [
        Figure(f"{label} ms per {people:,}", mean * 1000, "ms", at_most=budget),
        Figure(f"{label} rate", people / mean, "entries/s"),
        Figure(f"{label} first read ms", sum(first) / len(first) * 1000, "ms"),
    ]


def _bulk_append(count: int, *, batch_size: int = 5000) -> None:
    """Correctly chained entries continuing the current head, written without the per-entry
    lock and round trips of `audit_record`: only verification is measured on them."""
    head_seq, prev_hash = AuditHead.objects.filter(pk=HEAD_ID).values_list("seq", "hash").first() or (
        0,
        AUDIT_GENESIS_HASH,
    )
    pseudonyms = [uuid.uuid4() for _ in range(1000)]
    started = timezone.now()
    batch: list[AuditEntry] = []
    for i in range(count):
        entry = AuditEntry(
            seq=head_seq + 1 + i,
            created_at=started + timedelta(microseconds=i),
            actor_type="partner" if i % 3 else "staff",
            actor_id=f"client-{i % 17:04d}",
            action="profile.read",
            purpose="delivery",
            fields=["email", "address"],
            request_id=f"bench-{i:012d}",
            subject_pseudonym=pseudonyms[i % len(pseudonyms)],
            details=os.urandom(64) if i % 4 == 0 else None,  # stands in for a ciphertext
            prev_hash=prev_hash,
        )
        entry.hash = prev_hash = audit_entry_hash(entry)
        batch.append(entry)
        if len(batch) == batch_size:
            AuditEntry.objects.bulk_create(batch)
            batch = []
    AuditEntry.objects.bulk_create(batch)
    AuditHead.objects.update_or_create(pk=HEAD_ID, defaults={"seq": head_seq + count, "hash": prev_hash})


def bench_audit_verify(entries: int = 100_000) -> list[Figure]:
    _bulk_append(entries)
    started = time.perf_counter()
    result = audit_verify()
    elapsed = time.perf_counter() - started
    assert result.ok, result.failure
    return [
        Figure(f"audit_verify ({result.entries:,} entries) time", elapsed, "s"),
        Figure("audit_verify rate", result.entries / elapsed, "entries/s", at_least=100_000),
    ]
