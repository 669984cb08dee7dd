"""Documents and events (records): storing one, refused unless the person granted its kind's
purpose, and reading them back a page at a time, only the kinds the purpose may use. Both shapes
are one topic because they share their kinds, provenance and purpose rules."""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from consent.models import Purpose
from consent.selectors import consent_granted_subjects
from profiles.errors import ConsentRequired, InvalidValue, ProcessingRestricted, SourceNotAllowed, UnknownKind
from profiles.gate.actors import Actor
from profiles.gate.decrypt import decrypt_rows
from profiles.gate.planning import RIGHTS_PURPOSE, UNRESTRICTABLE, check_access, purpose_for
from profiles.models import EVENTS, ProfileDocument, ProfileEvent, RecordKind, Restriction
from profiles.types import document_clean
from vault import crypto
from vault.audit import audit_record, audit_record_many
from vault.errors import ApplicationError
from vault.fields import seal


@dataclass(frozen=True)
class Record:
    """A released document or event."""

    id: uuid.UUID
    kind: str
    body: Any
    source: str
    source_name: str
    occurred_at: datetime
    expires_at: datetime


def profile_records_read(
    *,
    subject_id: uuid.UUID,
    purpose: str,
    actor: Actor,
    shape: str,
    kinds: Iterable[str] | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[Record]:
    """The person's documents or events (`shape`) of the kinds `purpose` may use, newest first;
    `offset`/`limit` page through them (only the page is decrypted).

    For a marketing purpose only kinds collected for that purpose are released; the person's own
    rights release all of them."""
    subject_id = crypto.as_subject_id(subject_id)
    target = purpose_for(purpose)
    check_access(subject_id=subject_id, purpose=target)
    model, rows = _records(subject_id, target, shape, kinds)
    fetched: list[Any] = list(rows[offset : offset + limit] if limit else rows[offset:])
    bodies = decrypt_rows(subject_id, fetched, model.sealed_field()) if fetched else []
    audit_record(
        **actor.audit(),
        action=f"profile.{shape}s_read",
        purpose=target.slug,
        fields=sorted({f"{shape}.{row.kind.slug}" for row in fetched}),
        subject_id=subject_id,
    )
    return [
        Record(
            row.pk,
            row.kind.slug,
            body,
            row.source,
            row.source_name,
            getattr(row, "occurred_at", row.collected_at),
            row.expires_at,
        )
        for row, body in zip(fetched, bodies, strict=True)
    ]


def profile_records_count(
    *, subject_id: uuid.UUID, purpose: str, shape: str, kinds: Iterable[str] | None = None
) -> int:
    """How many documents or events `profile_records_read` would page through (nothing decrypted)."""
    target = purpose_for(purpose)
    check_access(subject_id=crypto.as_subject_id(subject_id), purpose=target)
    return _records(subject_id, target, shape, kinds)[1].count()


def _records(subject_id: uuid.UUID, purpose: Purpose, shape: str, kinds: Iterable[str] | None) -> tuple[Any, Any]:
    model: Any = ProfileEvent if shape == RecordKind.Shape.EVENT else ProfileDocument
    rows = model.objects.filter(subject_id=subject_id).select_related("kind")
    if purpose.slug != RIGHTS_PURPOSE:
        rows = rows.filter(kind__purpose=purpose)
    if kinds is not None:
        rows = rows.filter(kind__slug__in=list(kinds))
    return model, rows.order_by("-occurred_at" if model is ProfileEvent else "-collected_at", "id")


def _kind(slug: str, shape: str) -> RecordKind:
    kind = RecordKind.objects.select_related("purpose").filter(slug=slug, shape=shape).first()
    if kind is None:
        raise UnknownKind()
    return kind


def profile_record_write(
    *,
    subject_id: uuid.UUID,
    kind: str,
    shape: str,
    body: Any,
    source: str,
    actor: Actor,
    source_name: str = "",
    occurred_at: datetime | None = None,
) -> uuid.UUID:
    """Store a document (replacing the one of the same kind and source) or append an event.

    Refused, and nothing stored, unless the person has granted the kind's purpose."""
    subject_id = crypto.as_subject_id(subject_id)
    record_kind = _kind(kind, shape)
    if source not in record_kind.allowed_sources:
        raise SourceNotAllowed()
    model = ProfileEvent if shape == RecordKind.Shape.EVENT else ProfileDocument
    body = document_clean(body, param=model.sealed_field_name)
    check_access(subject_id=subject_id, purpose=record_kind.purpose)
    now = timezone.now()
    provenance = {
        "subject_id": subject_id,
        "kind": record_kind,
        "source": source,
        "source_name": source_name,
        "legal_basis": record_kind.purpose.legal_basis,
        "collected_at": now,
        "expires_at": (occurred_at or now) + timedelta(days=record_kind.retention_days),
    }
    with transaction.atomic():
        if shape == RecordKind.Shape.EVENT:
            record: ProfileEvent | ProfileDocument = ProfileEvent(
                id=uuid.uuid4(), occurred_at=occurred_at or now, **provenance
            )
        else:
            record = ProfileDocument(id=uuid.uuid4(), **provenance)
            same = ProfileDocument.objects.filter(subject_id=subject_id, kind=record_kind, source_name=source_name)
            same.delete()
        seal(record, model.sealed_field_name, body)
        try:
            with transaction.atomic():
                record.save(force_insert=True)
        except IntegrityError:
            # A concurrent writer put the same document in first: the later one replaces it.
            same.delete()
            record.save(force_insert=True)
        audit_record(
            **actor.audit(),
            action=f"profile.{shape}_write",
            purpose=record_kind.purpose.slug,
            fields=[f"{shape}.{record_kind.slug}"],
            subject_id=subject_id,
        )
    return record.pk


@dataclass(frozen=True)
class EventWrite:
    """One event of a batch for `profile_events_write`."""

    subject_id: uuid.UUID
    kind: str
    body: Any
    occurred_at: datetime


def profile_events_write(
    *, events: Sequence[EventWrite], source: str, source_name: str, actor: Actor
) -> list[uuid.UUID | ApplicationError]:
    """Append many events at once (a partner's batch): for each, in the order given, the new
    event's id or the error that refused it, with nothing stored for it (`UnknownKind`,
    `SourceNotAllowed`, `InvalidValue` for a body or an `occurred_at` older than the kind's
    retention, `ValueTooLong`, `ConsentRequired`,
    `ProcessingRestricted`, `SubjectErased`).

    The same rules as `profile_record_write`, checked for the whole batch in a fixed number of
    queries: the kinds, the consent to each kind's purpose (`consent_granted_subjects`), the
    restrictions, the data keys (`data_keys_for_write_many`, one unwrap per person); then one
    transaction with one bulk insert of the sealed rows and, per kind, one audit entry per person
    (`audit_record_many`, naming the kind, never a value)."""
    outcomes: list[uuid.UUID | ApplicationError | None] = [None] * len(events)
    kinds = {
        kind.slug: kind
        for kind in RecordKind.objects.select_related("purpose").filter(
            slug__in={event.kind for event in events}, shape=RecordKind.Shape.EVENT
        )
    }
    now = timezone.now()
    for index, event in enumerate(events):
        kind = kinds.get(event.kind)
        if kind is None:
            outcomes[index] = UnknownKind(param="kind")
        elif source not in kind.allowed_sources:
            outcomes[index] = SourceNotAllowed(param="kind")
        elif event.occurred_at + timedelta(days=kind.retention_days) <= now:
            outcomes[index] = InvalidValue("Older than events of this kind are kept.", param="occurred_at")
        else:
            try:
                document_clean(event.body, param="body")
            except ApplicationError as error:
                outcomes[index] = error
    _refuse_without_consent(events, kinds, outcomes)
    writable = crypto.data_keys_for_write_many(
        {event.subject_id for index, event in enumerate(events) if outcomes[index] is None}, EVENTS
    )
    rows: list[ProfileEvent] = []
    audited: dict[str, list[uuid.UUID]] = {}
    for index, event in enumerate(events):
        if outcomes[index] is not None:
            continue
        if event.subject_id not in writable:
            outcomes[index] = crypto.SubjectErased(param="person")
            continue
        kind = kinds[event.kind]
        row = ProfileEvent(
            id=uuid.uuid4(),
            subject_id=event.subject_id,
            kind=kind,
            occurred_at=event.occurred_at,
            source=source,
            source_name=source_name,
            legal_basis=kind.purpose.legal_basis,
            collected_at=now,
            expires_at=event.occurred_at + timedelta(days=kind.retention_days),
        )
        seal(row, ProfileEvent.sealed_field_name, event.body)
        rows.append(row)
        outcomes[index] = row.pk
        audited.setdefault(kind.slug, []).append(event.subject_id)
    with transaction.atomic():
        ProfileEvent.objects.bulk_create(rows, batch_size=1000)
        for slug, subjects in audited.items():
            audit_record_many(
                **actor.audit(),
                action="profile.event_write",
                purpose=kinds[slug].purpose.slug,
                fields=[f"event.{slug}"],
                subject_ids=subjects,
            )
    return [outcome for outcome in outcomes if outcome is not None]


def _refuse_without_consent(
    events: Sequence[EventWrite], kinds: dict[str, RecordKind], outcomes: list[uuid.UUID | ApplicationError | None]
) -> None:
    """Mark, in `outcomes`, the events whose person has not granted their kind's purpose or has
    restricted processing: one consent query per purpose in the batch, one for restrictions."""
    by_purpose: dict[str, set[uuid.UUID]] = {}
    for index, event in enumerate(events):
        if outcomes[index] is None:
            by_purpose.setdefault(kinds[event.kind].purpose.slug, set()).add(event.subject_id)
    granted = {
        slug: subjects if slug == RIGHTS_PURPOSE else consent_granted_subjects(subject_ids=subjects, purpose=slug)
        for slug, subjects in by_purpose.items()
    }
    everyone = set().union(*by_purpose.values()) if by_purpose else set()
    restricted = set(Restriction.objects.filter(subject_id__in=everyone).values_list("subject_id", flat=True))
    for index, event in enumerate(events):
        if outcomes[index] is not None:
            continue
        purpose = kinds[event.kind].purpose
        if event.subject_id not in granted[purpose.slug]:
            outcomes[index] = ConsentRequired(param="person")
        elif (
            event.subject_id in restricted
            and purpose.slug != RIGHTS_PURPOSE
            and purpose.legal_basis not in UNRESTRICTABLE
        ):
            outcomes[index] = ProcessingRestricted(param="person")
