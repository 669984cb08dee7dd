"""Event ingestion (issue 15, partners): a partner's batch of 1,000 events through
`partner_events_ingest` (each read strictly, pairwise ids mapped back, the consent to each
kind's purpose checked for the batch, restrictions, sealed under each person's events key, one
bulk insert, one audit entry per person and kind, the Idempotency-Key's answer kept) against
inserting the same 1,000 events as plaintext rows of the same shape with the ORM's
`bulk_create`. Alternated rounds, so both see the same machine; the ratio is the median of the
rounds' ratios."""

import json
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import connection, models
from django.utils import timezone

from bench.harness import Figure
from consent.models import ConsentState, ConsentStatus, PolicyVersion, Purpose
from partners.services import pairwise_ids_for, partner_client_create, partner_events_ingest
from profiles.gate import Actor
from profiles.models import RecordKind
from vault import crypto

BATCH = 1_000
ROUNDS = 7
KINDS = ("order", "product_view")


class PlainEvent(models.Model):
    """The baseline's event: `ProfileEvent`'s columns, its body as plaintext JSON."""

    id = models.UUIDField(primary_key=True)
    subject_id = models.UUIDField()
    kind = models.ForeignKey(RecordKind, on_delete=models.DO_NOTHING, db_constraint=False)
    occurred_at = models.DateTimeField()
    source = models.CharField(max_length=16)
    source_name = models.CharField(max_length=64)
    legal_basis = models.CharField(max_length=24)
    collected_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField()
    payload = models.JSONField()

    class Meta:
        app_label = "partners"
        db_table = "bench_plain_partner_event"
        managed = False

    def __str__(self) -> str:
        return str(self.id)


def _body(n: int) -> dict:
    return {
        "order": f"A-{n:06}",
        "total": f"{n % 200}.{n % 100:02}",
        "currency": "EUR",
        "items": [{"sku": f"SKU-{n * 7 % 9973:05}", "qty": 1 + n % 3, "price": "19.95"}],
        "store": "Amsterdam Centraal",
    }


_made: dict[int, tuple] = {}


def _population(people: int) -> tuple:
    """`people` people who granted personalization (projection rows written directly) and hold
    an events key, a client that may post orders and product views, and its ids for them."""
    if people in _made:
        return _made[people]
    subjects = [uuid.uuid4() for _ in range(people)]
    purpose = Purpose.objects.get(slug="personalization")
    version = PolicyVersion.objects.filter(purpose=purpose).latest("effective_from")
    now = timezone.now()
    ConsentState.objects.bulk_create(
        ConsentState(
            subject_id=s,
            purpose=purpose,
            status=ConsentStatus.GRANTED,
            policy_version=version,
            last_seq=1,
            changed_at=now,
        )
        for s in subjects
    )
    with crypto.key_scope():
        crypto.data_keys_create_many(subjects, "events")
    client = partner_client_create(
        slug=f"bench-shop-{people}",
        name="Bench shop",
        actor=Actor.system("bench"),
        purposes=["personalization"],
        record_kinds=list(KINDS),
    )
    ids = pairwise_ids_for(client=client, subject_ids=subjects)
    if not _made:
        with connection.schema_editor() as editor:
            editor.create_model(PlainEvent)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    _made[people] = (client, [ids[s] for s in subjects], {ids[s]: s for s in subjects})
    return _made[people]


def _batch(pairwise: list[str], start: int) -> dict:
    when = timezone.now() - timedelta(hours=1)
    return {
        "events": [
            {
                "person": pairwise[n % len(pairwise)],
                "kind": KINDS[n % 2],
                "occurred_at": (when - timedelta(seconds=n)).isoformat(),
                "body": _body(start + n),
            }
            for n in range(BATCH)
        ]
    }


def _plain_insert(payload: dict, subjects: dict[str, uuid.UUID], kinds: dict[str, RecordKind]) -> None:
    """The baseline: the same events as rows of the same columns, in plaintext, one bulk insert
    (no checks, no consent, no encryption, no audit)."""
    now = timezone.now()
    rows = []
    for event in payload["events"]:
        kind = kinds[event["kind"]]
        occurred_at = datetime.fromisoformat(event["occurred_at"])
        rows.append(
            PlainEvent(
                id=uuid.uuid4(),
                subject_id=subjects[event["person"]],
                kind=kind,
                occurred_at=occurred_at,
                source="partner",
                source_name="bench-shop",
                legal_basis=kind.purpose.legal_basis,
                collected_at=now,
                expires_at=occurred_at + timedelta(days=kind.retention_days),
                created_at=now,
                payload=event["body"],
            )
        )
    PlainEvent._default_manager.bulk_create(rows, batch_size=1000)


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _rounds(people: int) -> tuple[list[float], list[float]]:
    client, pairwise, subjects = _population(people)
    kinds = {k.slug: k for k in RecordKind.objects.select_related("purpose").filter(slug__in=KINDS)}
    counter = iter(range(10**9))

    def gated() -> None:
        payload = _batch(pairwise, next(counter) * BATCH)
        raw = json.dumps(payload).encode()
        key = uuid.uuid4().hex
        start = time.perf_counter()
        with crypto.key_scope():  # one request
            answer = partner_events_ingest(client=client, payload=json.loads(raw), raw_body=raw, idempotency_key=key)
        timings.append(time.perf_counter() - start)
        assert answer.body["accepted"] == BATCH, answer.body

    def plain() -> None:
        payload = json.loads(json.dumps(_batch(pairwise, next(counter) * BATCH)))
        start = time.perf_counter()
        _plain_insert(payload, subjects, kinds)
        timings.append(time.perf_counter() - start)

    timings: list[float] = []
    gated()  # warm up: the audit head and pseudonyms, caches
    plain()
    gate_times, plain_times = [], []
    for _ in range(ROUNDS):
        timings.clear()
        gated()
        plain()
        gate_times.append(timings[0])
        plain_times.append(timings[1])
    return gate_times, plain_times


def bench_ingest_batch(people: int = 200) -> list[Figure]:
    """1,000 events, 5 for each of 200 people (the audit writes one entry per person and kind)."""
    gate_times, plain_times = _rounds(people)
    ratios = [g / p for g, p in zip(gate_times, plain_times, strict=True)]
    return [
        Figure(f"ingest 1,000 events of {people} people (median)", statistics.median(gate_times) * 1000, "ms"),
        Figure("plaintext bulk insert, same rows (median)", statistics.median(plain_times) * 1000, "ms"),
        Figure(f"ingest / plaintext insert, median of {ROUNDS} rounds", statistics.median(ratios), "x", at_most=3.0),
    ]


def bench_ingest_batch_one_event_each() -> list[Figure]:
    """For information: 1,000 events of 1,000 different people (1,000 keys unwrapped, 1,000
    audit entries): the batch's worst shape."""
    gate_times, plain_times = _rounds(1_000)
    ratios = [g / p for g, p in zip(gate_times, plain_times, strict=True)]
    return [
        Figure("ingest 1,000 events of 1,000 people (median)", statistics.median(gate_times) * 1000, "ms"),
        Figure("plaintext bulk insert, same rows (median)", statistics.median(plain_times) * 1000, "ms"),
        Figure(f"ingest / plaintext insert, median of {ROUNDS} rounds", statistics.median(ratios), "x"),
    ]
