"""Writing demo people fast: each batch is one transaction that makes its data keys in bulk,
seals its rows inside one key scope (no key query per value), inserts them in bulk (COPY on
PostgreSQL), imports the consents in bulk, and writes one audit entry per person and kind of
import."""

import datetime
import operator
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from consent.models import NO_CHOICE_BASES, LegalBasis, Purpose
from consent.selectors import consent_granted_subjects
from consent.services import consent_import_many, digital_consent_age
from demo.people.generate import (
    ACTOR,
    CONSENT_MIX,
    FIELD_PURPOSES,
    IMPORT_NAME,
    PARTNER_NAME,
    DemoPerson,
    DemoRun,
    PeopleGenerator,
)
from profiles.errors import ProfileError
from profiles.gate import value_index
from profiles.models import (
    EVENTS,
    PROFILE,
    FieldDefinition,
    ProfileDocument,
    ProfileEvent,
    ProfileValue,
    RecordKind,
    Source,
)
from profiles.types import value_clean
from vault import crypto
from vault.audit import audit_record_many
from vault.fields import SealedField, seal


@dataclass(frozen=True)
class _Schema:
    """What the database's schema allows, looked up once: fields by key, the purposes each field
    may be kept under (of `FIELD_PURPOSES`, those it serves), kinds and purposes by slug."""

    fields: dict[str, FieldDefinition]
    bases: dict[str, tuple[str, ...]]
    kinds: dict[str, RecordKind]
    purposes: dict[str, Purpose]

    @classmethod
    def load(cls) -> "_Schema":
        definitions = FieldDefinition.objects.filter(deprecated_at__isnull=True).prefetch_related("purposes")
        fields = {d.key: d for d in definitions}
        serves = {key: {p.slug for p in d.purposes.all()} for key, d in fields.items()}
        return cls(
            fields=fields,
            bases={key: tuple(p for p in FIELD_PURPOSES.get(key, ()) if p in serves[key]) for key in fields},
            kinds={k.slug: k for k in RecordKind.objects.select_related("purpose")},
            purposes={p.slug: p for p in Purpose.objects.all()},
        )

    def importable(self) -> set[str]:
        """Purposes an import may grant: consent-based, and no double opt-in to prove."""
        return {
            slug
            for slug, p in self.purposes.items()
            if p.legal_basis not in NO_CHOICE_BASES
            and not p.requires_double_opt_in
            and p.versions.filter(effective_from__lte=timezone.now()).exists()
        }


def _source(allowed: list[str], preferred: Iterable[str]) -> str | None:
    return next((source for source in preferred if source in allowed), None)


def demo_people_create(
    *,
    count: int,
    seed: int | None = None,
    batch_size: int = 5000,
    progress: Callable[[int, int], None] | None = None,
    on_person: Callable[[DemoPerson], None] | None = None,
) -> DemoRun:
    """Create `count` demo people, `batch_size` per transaction; `progress(done, count)` is
    called after each batch, `on_person` with each person generated (the plaintext, for tests:
    it is never stored as such). The same `seed` makes the same people (with new ids)."""
    if count < 0 or batch_size < 1:
        raise ValueError("count must not be negative, and batch_size must be at least 1.")
    schema = _Schema.load()
    importable = schema.importable()
    ages: dict[tuple[str, str], int] = {}

    def consent_age(purpose: str, country: str) -> int:
        if purpose not in importable:
            return 10**6  # never granted by this import
        if (purpose, country) not in ages:
            ages[purpose, country] = digital_consent_age(schema.purposes[purpose], country)
        return ages[purpose, country]

    generator = PeopleGenerator(seed, consent_age)
    run = DemoRun()
    done = 0
    while done < count:
        people = [generator.person() for _ in range(min(batch_size, count - done))]
        if on_person is not None:
            for person in people:
                on_person(person)
        _write_batch(people, schema, run)
        done += len(people)
        if progress is not None:
            progress(done, count)
    return run


def _write_batch(people: list[DemoPerson], schema: _Schema, run: DemoRun) -> None:
    """One transaction: data keys, the rows the people's choices allow, the choices themselves,
    then a check that the ledger allows every row written (else all of it rolls back), and the
    audit. Choices and audit come last because the audit log's head stays locked from a
    transaction's first append until it commits, holding up every other audited action; the key
    scope ends with the transaction, as `data_keys_create_many` asks."""
    now = timezone.now()
    ids = [person.subject_id for person in people]
    allowed = _allowed(people, schema)
    with transaction.atomic(), crypto.key_scope():
        crypto.data_keys_create_many(ids, PROFILE)
        audited: dict[tuple[str, tuple[str, ...]], list[uuid.UUID]] = {}
        values = [row for person in people for row in _values(person, schema, allowed, now, audited)]
        documents = [row for person in people for row in _documents(person, schema, allowed, now, audited)]
        kept = [(person, event) for person in people for event in _allowed_events(person, schema, allowed)]
        crypto.data_keys_create_many(dict.fromkeys(person.subject_id for person, _ in kept), EVENTS)
        events = list(_events(kept, schema, now, audited))
        _insert(ProfileValue, values)
        _insert(ProfileDocument, documents)
        _insert(ProfileEvent, events)
        run.consent_events += consent_import_many(
            grants=[(p.subject_id, slug) for p in people for slug in p.grants],
            withdrawals=[(p.subject_id, slug) for p in people for slug in p.withdrawals],
            ages={p.subject_id: p.age for p in people},
            jurisdictions={p.subject_id: p.country for p in people},
            actor_id=ACTOR,
            batch_size=len(people) * len(CONSENT_MIX),
        )
        needed: dict[str, set[uuid.UUID]] = {}
        for (purpose, _), group in audited.items():
            needed.setdefault(purpose, set()).update(group)
        for purpose, kept_for in needed.items():
            if consent_granted_subjects(subject_ids=kept_for, purpose=purpose) != kept_for:
                raise RuntimeError(f"The ledger does not allow all the rows kept under {purpose}: nothing is kept.")
        for (purpose, fields), subjects in audited.items():
            audit_record_many(
                actor_type="system",
                actor_id=ACTOR,
                action="profile.import",
                purpose=purpose,
                fields=fields,
                subject_ids=subjects,
            )
    run.subject_ids += ids
    run.values += len(values)
    run.documents += len(documents)
    run.events += len(events)


def _allowed(people: list[DemoPerson], schema: _Schema) -> dict[str, set[uuid.UUID]]:
    """Who each purpose may process, once the people's choices are recorded: everyone for a
    contract or legal obligation, those who did not object for a legitimate interest, those who
    granted and did not withdraw for consent. The ledger is asked the same before commit."""
    allowed: dict[str, set[uuid.UUID]] = {}
    for slug, purpose in schema.purposes.items():
        if purpose.legal_basis in NO_CHOICE_BASES:
            allowed[slug] = {p.subject_id for p in people}
        elif purpose.legal_basis == LegalBasis.LEGITIMATE_INTEREST:
            allowed[slug] = {p.subject_id for p in people if slug not in p.withdrawals}
        else:
            allowed[slug] = {p.subject_id for p in people if slug in p.grants and slug not in p.withdrawals}
    return allowed


# PostgreSQL type names for binary COPY, by Django column type; a model with another column
# type is copied as text.
_COPY_TYPES = {
    "uuid": "uuid",
    "bytea": "bytea",
    "text": "text",
    "timestamp with time zone": "timestamptz",
    "integer": "int4",
    "bigint": "int8",
}


def _insert(model: type[Model], rows: list[Any]) -> None:
    """`bulk_create`, except on PostgreSQL: there a binary COPY, which inserted a batch's 80,000
    values in 1.3 s where `bulk_create` took 6 s (Django binds its arrays on the client, value
    by value) and a text COPY 2 s. Sealed fields still go through their own preparation, which
    refuses anything but ciphertext; the `auto_now` times are set as `bulk_create` sets them."""
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(rows, batch_size=2000)
        return
    fields = model._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column or f.attname) for f in fields)
    db_types = [str(f.db_type(connection)) for f in fields]
    types = [_COPY_TYPES.get(t, "text" if t.startswith("varchar") else "") for t in db_types]
    binary = all(types)
    sealed = [(i, f) for i, f in enumerate(fields) if isinstance(f, SealedField)]
    stamped = [f for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
    plain = operator.attrgetter(*(f.attname for f in fields))
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql + (" (FORMAT BINARY)" if binary else "")) as copy:
        if binary:
            copy.set_types(types)
        for row in rows:
            for f in stamped:
                f.pre_save(row, add=True)
            record = list(plain(row))
            for i, f in sealed:
                record[i] = f.get_db_prep_save(record[i], connection)
            copy.write_row(record)


def _values(
    person: DemoPerson,
    schema: _Schema,
    allowed: dict[str, set[uuid.UUID]],
    now: datetime.datetime,
    audited: dict[tuple[str, tuple[str, ...]], list[uuid.UUID]],
) -> Iterator[ProfileValue]:
    by_purpose: dict[str, list[str]] = {}
    for key, raw in person.values.items():
        definition = schema.fields.get(key)
        if definition is None:
            continue
        # The first purpose the field may be kept under that the person allows (a contract always).
        purpose = next((slug for slug in schema.bases[key] if person.subject_id in allowed.get(slug, ())), "")
        preferred = (Source.SOCIAL,) if key == "social_profile_url" else (Source.IMPORT, Source.PARTNER)
        source = _source(definition.allowed_sources, preferred)
        if not purpose or source is None:
            continue
        try:
            value = value_clean(definition, raw)
        except ProfileError:  # staff changed the field (a choice removed, a shorter maximum)
            continue
        row = ProfileValue(
            id=uuid.uuid4(),
            subject_id=person.subject_id,
            definition_id=definition.pk,
            source=source,
            source_name=person.social["provider"] if source == Source.SOCIAL and person.social else IMPORT_NAME,
            legal_basis=schema.purposes[purpose].legal_basis,
            collected_at=now,
            expires_at=now + datetime.timedelta(days=definition.retention_days),
            blind_index=value_index(definition, value) if definition.searchable else "",
        )
        seal(row, "value", value)
        by_purpose.setdefault(purpose, []).append(key)
        yield row
    for purpose, keys in by_purpose.items():
        audited.setdefault((purpose, tuple(keys)), []).append(person.subject_id)


def _documents(
    person: DemoPerson,
    schema: _Schema,
    allowed: dict[str, set[uuid.UUID]],
    now: datetime.datetime,
    audited: dict[tuple[str, tuple[str, ...]], list[uuid.UUID]],
) -> Iterator[ProfileDocument]:
    kind = schema.kinds.get("social_profile")
    if person.social is None or kind is None or Source.SOCIAL not in kind.allowed_sources:
        return
    if person.subject_id not in allowed.get(kind.purpose.slug, ()):
        return
    row = ProfileDocument(
        id=uuid.uuid4(),
        subject_id=person.subject_id,
        kind_id=kind.pk,
        source=Source.SOCIAL,
        source_name=person.social["provider"],
        legal_basis=kind.purpose.legal_basis,
        collected_at=now,
        expires_at=now + datetime.timedelta(days=kind.retention_days),
    )
    seal(row, "body", person.social)
    audited.setdefault((kind.purpose.slug, ("document.social_profile",)), []).append(person.subject_id)
    yield row


def _allowed_events(
    person: DemoPerson, schema: _Schema, allowed: dict[str, set[uuid.UUID]]
) -> Iterator[tuple[str, datetime.datetime, dict[str, Any]]]:
    """The person's events whose kind's purpose they have granted: no other is ever stored."""
    for event in person.events:
        kind = schema.kinds.get(event[0])
        if kind is not None and person.subject_id in allowed.get(kind.purpose.slug, ()):
            yield event


def _events(
    kept: list[tuple[DemoPerson, tuple[str, datetime.datetime, dict[str, Any]]]],
    schema: _Schema,
    now: datetime.datetime,
    audited: dict[tuple[str, tuple[str, ...]], list[uuid.UUID]],
) -> Iterator[ProfileEvent]:
    per_person: dict[uuid.UUID, dict[str, set[str]]] = {}
    for person, (slug, occurred_at, payload) in kept:
        kind = schema.kinds[slug]
        source = _source(kind.allowed_sources, (Source.IMPORT, Source.PARTNER))
        if source is None:
            continue
        row = ProfileEvent(
            id=uuid.uuid4(),
            subject_id=person.subject_id,
            kind_id=kind.pk,
            occurred_at=occurred_at,
            source=source,
            source_name=IMPORT_NAME if source == Source.IMPORT else PARTNER_NAME,
            legal_basis=kind.purpose.legal_basis,
            collected_at=now,
            expires_at=occurred_at + datetime.timedelta(days=kind.retention_days),
        )
        seal(row, "payload", payload)
        per_person.setdefault(person.subject_id, {}).setdefault(kind.purpose.slug, set()).add(f"event.{slug}")
        yield row
    for subject_id, by_purpose in per_person.items():
        for purpose, names in by_purpose.items():
            audited.setdefault((purpose, tuple(sorted(names))), []).append(subject_id)
