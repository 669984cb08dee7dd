"""The access gate (issue "Profiles"): one person's 10 fields through the gate, with its consent
check and audit entry; the bulk read of 10,000 people; and that bulk read against the same 10
fields stored in plaintext columns, read through the ORM in the same run."""

import time
import uuid

from django.db import connection, models
from django.utils import timezone

from bench.harness import Figure, latency_figures, time_each
from consent.models import ConsentState, ConsentStatus, PolicyVersion, Purpose
from profiles.gate import Actor, profile_read, profile_read_many
from profiles.models import FieldDefinition, ProfileValue
from vault import crypto
from vault.fields import seal

PEOPLE = 10_000
PURPOSE = "personalization"
VALUES = {
    "given_name": "Margaretha",
    "birth_date": "1990-12-10",
    "country": "NL",
    "city": "Amsterdam",
    "postal_code": "1017 CT",
    "preferred_language": "nl",
    "shoe_size": "42",
    "clothing_size": "M",
    "favorite_brands": "Onitsuka, Veja",
    "interests": ["running", "yoga"],
}
FIELDS = list(VALUES)
ACTOR = Actor.partner("bench-recommender")


class PlainProfile(models.Model):
    """The comparison: the same 10 fields as plaintext columns of one row per person."""

    id = models.UUIDField(primary_key=True)
    given_name = models.CharField(max_length=100)
    birth_date = models.DateField()
    country = models.CharField(max_length=2)
    city = models.CharField(max_length=100)
    postal_code = models.CharField(max_length=20)
    preferred_language = models.CharField(max_length=8)
    shoe_size = models.CharField(max_length=4)
    clothing_size = models.CharField(max_length=4)
    favorite_brands = models.CharField(max_length=300)
    interests = models.JSONField()

    class Meta:
        app_label = "profiles"
        db_table = "bench_plain_profile"
        managed = False

    def __str__(self) -> str:
        return str(self.id)


_people: list[uuid.UUID] = []


def _population(count: int = PEOPLE) -> list[uuid.UUID]:
    """`count` people (10,000 unless asked) with the 10 fields, all granted personalization
    (projection rows written directly: only reads are measured), and the same data in plaintext
    for the comparison. A larger count adds people to those already seeded."""
    if len(_people) >= count:
        return _people[:count]
    from profiles.types import value_clean

    definitions = {d.key: d for d in FieldDefinition.objects.filter(key__in=FIELDS)}
    cleaned = {key: value_clean(definitions[key], value) for key, value in VALUES.items()}
    people = [uuid.uuid4() for _ in range(count - len(_people))]
    purpose = Purpose.objects.get(slug=PURPOSE)
    version = PolicyVersion.objects.filter(purpose=purpose).latest("effective_from")
    now = timezone.now()
    ConsentState.objects.bulk_create(
        (
            ConsentState(
                subject_id=s,
                purpose=purpose,
                status=ConsentStatus.GRANTED,
                policy_version=version,
                last_seq=1,
                changed_at=now,
            )
            for s in people
        ),
        batch_size=5000,
    )
    for start in range(0, len(people), 10_000):  # in slices: 100,000 people's rows at once is a lot of memory
        rows = []
        with crypto.key_scope():
            for subject in people[start : start + 10_000]:
                for key, value in cleaned.items():
                    row = ProfileValue(
                        id=uuid.uuid4(),
                        subject_id=subject,
                        definition=definitions[key],
                        source="import",
                        legal_basis="consent",
                        collected_at=now,
                        expires_at=now,
                    )
                    seal(row, "value", value)
                    rows.append(row)
        ProfileValue.objects.bulk_create(rows, batch_size=5000)
    if not _people:
        with connection.schema_editor() as editor:
            editor.create_model(PlainProfile)
    PlainProfile._default_manager.bulk_create((PlainProfile(id=s, **cleaned) for s in people), batch_size=5000)
    if connection.vendor == "postgresql":
        # Statistics, as autovacuum would gather them within a minute of such a load: without
        # them the planner guesses at tables it has just seen grow from empty.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    _people.extend(people)
    return _people


def bench_gate_read_one(calls: int = 500) -> list[Figure]:
    """One person's 10 fields through the gate: purpose, consent check, fields, decrypt, audit.
    The first read of a person also creates their audit pseudonym (once in their life): it is
    reported apart, and the target applies to the reads after it."""
    people = _population()[:calls]

    def reads() -> list[float]:
        pending = iter(people)

        def read() -> None:
            with crypto.key_scope():  # one request
                profile_read(subject_id=next(pending), fields=FIELDS, purpose=PURPOSE, actor=ACTOR)

        return time_each(read, repeat=calls, warmup=0)

    first = sorted(reads())[calls // 2] * 1000
    figures = latency_figures("gate read, 10 fields of one person", reads())
    return [
        Figure("gate read, first read of a person p50", first, "ms"),
        *(Figure(f.name, f.value, f.unit, at_most=5.0) if f.name.endswith("p50") else f for f in figures),
    ]


def bench_gate_read_bulk(repeats: int = 3) -> list[Figure]:
    """10,000 people's 10 fields through the gate, against the plaintext ORM read, side by side."""
    people = _population()

    def gate() -> None:
        found = profile_read_many(subject_ids=people, fields=FIELDS, purpose=PURPOSE, actor=ACTOR)
        assert len(found) == PEOPLE and len(found[people[0]]) == 10

    def plain() -> None:
        found = {row.id: row for row in PlainProfile._default_manager.filter(id__in=people).only("id", *FIELDS)}
        assert len(found) == PEOPLE

    gate_times: list[float] = []
    plain_times: list[float] = []
    for _ in range(repeats):
        for call, times in ((gate, gate_times), (plain, plain_times)):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
    best_gate, best_plain = min(gate_times), min(plain_times)
    return [
        Figure("gate bulk read, 10,000 people x 10 fields", best_gate * 1000, "ms"),
        Figure("gate bulk read rate", PEOPLE / best_gate, "people/s", at_least=20_000),
        Figure("plaintext ORM read, same 10,000 x 10", best_plain * 1000, "ms"),
        Figure("gate bulk / plaintext ORM", best_gate / best_plain, "x", at_most=3.0),
    ]
