"""The access/export bundle (issue "Rights"): one person with 100 profile values and 1,000 events
exported through the gate (every part: JSON, CSV, README, zip), against a plaintext baseline
that reads the same rows of the same shape with the ORM and writes the same JSON and CSV into a
zip; and the whole job (claim, build, seal, store), for information."""

import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from django.db import connection, models
from django.utils import timezone

from accounts.models import User
from bench.harness import Figure
from consent.models import Purpose
from profiles.gate import Actor
from profiles.models import Category, FieldDefinition, ProfileEvent, ProfileValue, RecordKind
from rights.export.formats import export_files, zip_bytes
from rights.export.parts import ExportParts
from rights.models import Kind
from rights.services.export import export_bundle_build, export_zip_build
from rights.services.requests import request_record
from vault import crypto
from vault.fields import seal

VALUES = 100
EVENTS = 1_000
REPEATS = 5


class PlainExportValue(models.Model):
    """The baseline's profile value: a value with its field and provenance, in plaintext."""

    id = models.UUIDField(primary_key=True)
    subject_id = models.UUIDField()
    key = models.CharField(max_length=64)
    label = models.CharField(max_length=120)
    field_type = models.CharField(max_length=16)
    category = models.CharField(max_length=16)
    value = models.TextField()
    source = models.CharField(max_length=16)
    source_name = models.CharField(max_length=64)
    legal_basis = models.CharField(max_length=24)
    collected_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    purposes = models.JSONField()

    class Meta:
        app_label = "rights"
        db_table = "bench_plain_export_value"
        managed = False

    def __str__(self) -> str:
        return self.key


class PlainExportEvent(models.Model):
    """The baseline's event: the same columns as `ProfileEvent`, its body in plaintext JSON."""

    id = models.UUIDField(primary_key=True)
    subject_id = models.UUIDField()
    kind = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    source = models.CharField(max_length=16)
    source_name = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    body = models.JSONField()

    class Meta:
        app_label = "rights"
        db_table = "bench_plain_export_event"
        managed = False

    def __str__(self) -> str:
        return self.kind


def _body(n: int) -> dict:
    return {
        "order": f"A-{n:06}",
        "total": f"{n % 200}.{n % 100:02}",
        "currency": "EUR",
        "items": [{"sku": f"SKU-{n * 7 % 9973:05}", "qty": 1 + n % 3, "price": "19.95"}],
        "store": "Amsterdam Centraal",
    }


_person: list[uuid.UUID] = []


def _population() -> uuid.UUID:
    """One account with 100 sealed values (100 fields made for the bench) and 1,000 sealed
    events; the same rows in plaintext tables for the baseline."""
    if _person:
        return _person[0]
    person = User.objects.create_user("bench-export@example.com").pk
    purpose = Purpose.objects.get(slug="personalization")
    now = timezone.now()
    definitions = []
    for n in range(VALUES):
        definition = FieldDefinition.objects.create(
            key=f"bench_export_{n:03}",
            label=f"Bench field {n}",
            field_type="text",
            category=Category.PREFERENCE,
            retention_days=365,
            allowed_sources=["import"],
        )
        definition.purposes.set([purpose])
        definitions.append(definition)
    kind = RecordKind.objects.get(slug="order")
    values, events = [], []
    with crypto.key_scope():
        for n, definition in enumerate(definitions):
            row = ProfileValue(
                id=uuid.uuid4(),
                subject_id=person,
                definition=definition,
                source="import",
                legal_basis="consent",
                collected_at=now,
                expires_at=now + timedelta(days=365),
            )
            seal(row, "value", f"value number {n} of the bench person")
            values.append(row)
        for n in range(EVENTS):
            event = ProfileEvent(
                id=uuid.uuid4(),
                subject_id=person,
                kind=kind,
                occurred_at=now - timedelta(minutes=n),
                source="partner",
                source_name="shop",
                legal_basis="consent",
                collected_at=now,
                expires_at=now + timedelta(days=730),
            )
            seal(event, "payload", _body(n))
            events.append(event)
    ProfileValue.objects.bulk_create(values)
    ProfileEvent.objects.bulk_create(events, batch_size=500)
    with connection.schema_editor() as editor:
        editor.create_model(PlainExportValue)
        editor.create_model(PlainExportEvent)
    PlainExportValue._default_manager.bulk_create(
        PlainExportValue(
            id=uuid.uuid4(),
            subject_id=person,
            key=d.key,
            label=d.label,
            field_type=d.field_type,
            category=d.category,
            value=f"value number {n} of the bench person",
            source="import",
            source_name="",
            legal_basis="consent",
            collected_at=now,
            expires_at=now + timedelta(days=365),
            purposes=[{"slug": purpose.slug, "name": purpose.name}],
        )
        for n, d in enumerate(definitions)
    )
    PlainExportEvent._default_manager.bulk_create(
        (
            PlainExportEvent(
                id=e.id,
                subject_id=person,
                kind="order",
                occurred_at=e.occurred_at,
                source="partner",
                source_name="shop",
                expires_at=e.expires_at,
                body=_body(n),
            )
            for n, e in enumerate(events)
        ),
        batch_size=500,
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    _person.append(person)
    return person


def _plain_export(person: uuid.UUID) -> bytes:
    """The baseline: the same rows read with the ORM, no decryption, no gate, no audit; the same
    profile and events JSON and CSV (and README) written into a zip."""
    generated_at = timezone.now().replace(microsecond=0)
    parts = ExportParts(subject_id=person, generated_at=generated_at)
    parts.profile = [
        {
            "key": v.key,
            "label": v.label,
            "type": v.field_type,
            "category": v.category,
            "value": v.value,
            "source": v.source,
            "source_name": v.source_name,
            "legal_basis": v.legal_basis,
            "collected_at": v.collected_at,
            "expires_at": v.expires_at,
            "purposes": v.purposes,
        }
        for v in PlainExportValue._default_manager.filter(subject_id=person).order_by("category", "key")
    ]
    parts.events = [
        {
            "id": str(e.id),
            "kind": e.kind,
            "occurred_at": e.occurred_at,
            "source": e.source,
            "source_name": e.source_name,
            "expires_at": e.expires_at,
            "body": e.body,
        }
        for e in PlainExportEvent._default_manager.filter(subject_id=person).order_by("-occurred_at", "id")
    ]
    return zip_bytes(export_files(parts), stamp=generated_at)


def _best(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_export_one_person(repeats: int = REPEATS) -> list[Figure]:
    """export_zip_build of one person (100 values, 1,000 events) against the plaintext baseline,
    alternated, best of `repeats` each."""
    person = _population()
    actor = Actor.person(person)

    def gated() -> None:
        with crypto.key_scope():  # one task
            export_zip_build(subject_id=person, actor=actor)

    def plain() -> None:
        _plain_export(person)

    gated()  # warm up: caches, the audit pseudonym
    plain()
    gate_times, plain_times = [], []
    for _ in range(repeats):  # alternated, so both see the same machine
        gate_times.append(_best(gated, 1))
        plain_times.append(_best(plain, 1))
    best_gate, best_plain = min(gate_times), min(plain_times)
    size = len(export_zip_build(subject_id=person, actor=actor))
    return [
        Figure("export zip, 100 values + 1,000 events", best_gate * 1000, "ms"),
        Figure("plaintext ORM baseline, same rows and files", best_plain * 1000, "ms"),
        Figure("export / plaintext baseline", best_gate / best_plain, "x", at_most=3.0),
        Figure("zip size", size / 1024, "KiB"),
    ]


def bench_export_job(repeats: int = 3) -> list[Figure]:
    """The whole job of a request: claim, build, seal under the person's key, store, complete."""
    person = _population()

    def job() -> None:
        request = request_record(
            subject_id=person,
            kind=Kind.EXPORT,
            channel="portal",
            verification="reauthentication",
            actor=Actor.person(person),
        )
        with crypto.key_scope():
            assert export_bundle_build(request_id=request.pk) is not None

    return [Figure("export job (claim, build, seal, store)", _best(job, repeats) * 1000, "ms")]


def _person_with_events(count: int, tag: str) -> uuid.UUID:
    """An account with `count` sealed events and an erasure request whose grace period is over."""
    from rights.services.requests import request_record as record

    person = User.objects.create_user(f"bench-erase-{tag}@example.com").pk
    kind = RecordKind.objects.get(slug="order")
    now = timezone.now()
    events = []
    with crypto.key_scope():
        for n in range(count):
            event = ProfileEvent(
                id=uuid.uuid4(),
                subject_id=person,
                kind=kind,
                occurred_at=now - timedelta(minutes=n),
                source="partner",
                source_name="shop",
                legal_basis="consent",
                collected_at=now,
                expires_at=now + timedelta(days=730),
            )
            seal(event, "payload", _body(n))
            events.append(event)
    ProfileEvent.objects.bulk_create(events, batch_size=1000)
    request = record(
        subject_id=person,
        kind=Kind.ERASURE,
        channel="portal",
        verification="reauthentication",
        actor=Actor.person(person),
    )
    type(request).objects.filter(pk=request.pk).update(grace_ends_at=now)
    _erasures[person] = request.pk
    return person


_erasures: dict[uuid.UUID, uuid.UUID] = {}


def bench_erasure_moment(repeats: int = 3) -> list[Figure]:
    """The moment of erasure (sessions ended, tokens revoked, outbox, journal, keys destroyed)
    for a person with 10 events and for one with 10,000: the same queries, about the same time.
    Then the background purge of the 10,000, for information."""
    from django.test.utils import CaptureQueriesContext

    from rights.services.erasure import erasure_execute, erasure_purge_all

    timings: dict[int, list[float]] = {10: [], 10_000: []}
    queries: dict[int, int] = {}
    people = {size: [_person_with_events(size, f"{size}-{n}") for n in range(repeats)] for size in timings}
    for n in range(repeats):  # alternated, so both see the same machine
        for size in timings:
            person = people[size][n]
            with CaptureQueriesContext(connection) as captured:
                start = time.perf_counter()
                assert erasure_execute(request_id=_erasures[person]) == person
                timings[size].append(time.perf_counter() - start)
            queries[size] = len(captured)
    start = time.perf_counter()
    for person in people[10_000]:
        erasure_purge_all(subject_id=person)
    purge = (time.perf_counter() - start) / repeats
    small, large = min(timings[10]), min(timings[10_000])
    return [
        Figure("erasure moment, 10 events", small * 1000, "ms"),
        Figure("erasure moment, 10,000 events", large * 1000, "ms"),
        Figure("erasure moment 10,000 / 10 events", large / small, "x", at_most=1.5),
        Figure(
            "erasure moment queries, 10,000 events - 10 events", queries[10_000] - queries[10], "queries", at_most=0
        ),
        Figure("background purge of 10,000 events (batches of 1,000)", purge * 1000, "ms"),
    ]
