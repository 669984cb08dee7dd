"""Reads of the profiles app: the schema, and the person's own listing (read through the gate:
personal data is only ever decrypted by `profiles.gate`)."""

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Subquery
from django.utils import timezone

from profiles.gate import RIGHTS_PURPOSE, Actor, profile_read
from profiles.models import FieldDefinition, Merge, ProfileValue, ProfileValueHistory, RecordKind, Restriction, Source


def person_fields() -> list[FieldDefinition]:
    """The fields a person sees in their portal and API, deprecated ones included (their values
    stay visible until retention removes them)."""
    return list(FieldDefinition.objects.filter(person_can_view=True).prefetch_related("purposes"))


def unscoped_field_definitions() -> QuerySet[FieldDefinition]:
    """Every field definition, for staff: the whole schema, not one person's view of it."""
    return FieldDefinition.objects.prefetch_related("purposes")


@dataclass(frozen=True)
class SchemaChangeEffect:
    """What a change of a field definition would do to what is stored, counted without reading
    a value (so nothing is decrypted): staff see it before they confirm the change."""

    key: str
    changed: list[str]  # the attributes that differ from the stored definition
    values: int  # current values of the field
    people: int  # who hold one
    earlier_values: int  # replaced values kept in the history (they follow the same rules)
    purposes_removed: list[str] = field(default_factory=list)
    purposes_added: list[str] = field(default_factory=list)
    retention_shortened: int = 0  # values (current and earlier) that would expire sooner
    retention_expired: int = 0  # of them, already past the new period: the next retention run deletes them
    reindexed: int = 0  # values whose blind index would be recomputed (or dropped)
    deprecated: bool = False  # the change deprecates the field: no new values from then on

    @property
    def touches_values(self) -> bool:
        return bool(self.values or self.earlier_values) and bool(self.changed or self.deprecated)


def field_definition_change_effect(
    *, key: str, changes: Mapping[str, Any], purposes: Iterable[str] | None = None, deprecate: bool = False
) -> SchemaChangeEffect:
    """How many stored values (and of how many people) a change of the field `key` would affect:
    what `field_definition_update` (or `field_definition_deprecate`) would do, counted, not done.
    A handful of COUNT queries on indexed columns, whatever the number of values."""
    definition = FieldDefinition.objects.get(key=key)
    changed = [name for name, value in changes.items() if getattr(definition, name) != value]
    stored = sorted(definition.purposes.values_list("slug", flat=True))
    removed: list[str] = []
    added: list[str] = []
    if purposes is not None:
        wanted = set(purposes)
        removed = sorted(set(stored) - wanted)
        added = sorted(wanted - set(stored))
        if removed or added:
            changed.append("purposes")
    current = ProfileValue.objects.filter(definition=definition)
    history = ProfileValueHistory.objects.filter(definition=definition)
    counts = current.aggregate(values=Count("id"), people=Count("subject_id", distinct=True))
    earlier = history.count()
    shortened = expired = 0
    retention = changes.get("retention_days")
    if "retention_days" in changed and isinstance(retention, int) and retention < definition.retention_days:
        period = timedelta(days=retention)
        now = timezone.now()
        for rows in (current, history):
            sooner = rows.filter(expires_at__gt=F("collected_at") + period)
            shortened += sooner.count()
            expired += sooner.filter(collected_at__lte=now - period).count()
    index_changed = {"searchable", "index_bits"} & set(changed)
    return SchemaChangeEffect(
        key=key,
        changed=changed,
        values=counts["values"],
        people=counts["people"],
        earlier_values=earlier,
        purposes_removed=removed,
        purposes_added=added,
        retention_shortened=shortened,
        retention_expired=expired,
        reindexed=counts["values"] if index_changed else 0,
        deprecated=deprecate and definition.deprecated_at is None,
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, list | dict | bool | int | str) or value is None:
        return value
    return str(value)  # dates and decimals as their ISO / exact text


def profile_listing(*, subject_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every field the person may see, with their value and its provenance (one gated read)."""
    definitions = person_fields()
    read = profile_read(
        subject_id=subject_id,
        fields=[d.key for d in definitions],
        purpose=RIGHTS_PURPOSE,
        actor=Actor.person(subject_id),
    )
    listing = []
    for definition in definitions:
        held = read.get(definition.key)
        if definition.is_deprecated and held is None:
            continue
        listing.append(
            {
                "key": definition.key,
                "label": definition.label,
                "help_text": definition.help_text,
                "field_type": definition.field_type,
                "category": definition.category,
                "choices": definition.choices,
                "can_edit": definition.person_can_edit and not definition.is_deprecated,
                "value": None if held is None else _json_value(held.value),
                "source": held and held.source,
                "source_name": held and held.source_name,
                "collected_at": held and held.collected_at,
                "expires_at": held and held.expires_at,
            }
        )
    return listing


def profile_fields_held(*, subject_id: uuid.UUID, keys: list[str]) -> set[str]:
    """Which of these fields hold a value for the person, without decrypting (so without an
    audit entry: no personal data is read). Pages use it to ask only for what is missing."""
    held = ProfileValue.objects.filter(subject_id=subject_id, definition__key__in=keys)
    return set(held.values_list("definition__key", flat=True))


@dataclass(frozen=True)
class HeldField:
    """A field the person holds a value for, as staff see it before any reveal: the schema's
    words, the value's provenance and the purposes the field serves. Never the value."""

    key: str
    label: str
    category: str
    source: str
    source_name: str
    collected_at: datetime
    expires_at: datetime
    purposes: frozenset[str]


def profile_fields_overview(*, subject_id: uuid.UUID) -> list[HeldField]:
    """Every field holding a value for the person, in the schema's order, with provenance and
    purposes: for the staff's masked page. The ciphertext is not even loaded, so nothing is
    decrypted and no audit entry is written here (the page audits being viewed itself)."""
    rows = (
        ProfileValue.objects.filter(subject_id=subject_id)
        .defer("value")
        .select_related("definition")
        .prefetch_related("definition__purposes")
        .order_by("definition__category", "definition__key")
    )
    return [
        HeldField(
            key=row.definition.key,
            label=row.definition.label,
            category=row.definition.category,
            source=row.source,
            source_name=row.source_name,
            collected_at=row.collected_at,
            expires_at=row.expires_at,
            purposes=frozenset(p.slug for p in row.definition.purposes.all()),
        )
        for row in rows
    ]


def profile_source_fields(*, subject_id: uuid.UUID, source: str, source_name: str) -> list[tuple[str, str, bool]]:
    """The fields whose current value one source (a social provider) brought, as (key, label,
    keepable) in the schema's order, without decrypting: keepable when the person may hold it
    as their own (`profile_source_keep`)."""
    rows = (
        ProfileValue.objects.filter(subject_id=subject_id, source=source, source_name=source_name)
        .select_related("definition")
        .order_by("definition__category", "definition__key")
    )
    return [
        (
            row.definition.key,
            row.definition.label,
            row.definition.person_can_edit and Source.SELF_SERVICE in row.definition.allowed_sources,
        )
        for row in rows
    ]


def profile_is_restricted(*, subject_id: uuid.UUID) -> bool:
    """Whether the person restricted processing (GDPR Art. 18)."""
    return Restriction.objects.filter(subject_id=subject_id).exists()


def profiles_restricted(*, subject_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these people restricted processing, in one query."""
    return set(Restriction.objects.filter(subject_id__in=subject_ids).values_list("subject_id", flat=True))


def special_category_purposes() -> set[str]:
    """Purposes that some special-category field serves: the "sensitive personal information"
    a person can limit the use of (CCPA)."""
    return set(
        FieldDefinition.objects.filter(is_special_category=True)
        .exclude(purposes=None)
        .values_list("purposes__slug", flat=True)
    )


def profile_survivor(*, subject_id: uuid.UUID) -> uuid.UUID:
    """Whom `subject_id` is now: the survivor of the merges it was merged into (followed to the
    end; a merge undone no longer counts), or itself."""
    seen = {subject_id}
    current = subject_id
    while True:
        survivor = (
            Merge.objects.filter(merged_id=current, undone_at__isnull=True)
            .order_by("-created_at")
            .values_list("survivor_id", flat=True)
            .first()
        )
        if survivor is None or survivor in seen:
            return current
        seen.add(survivor)
        current = survivor


def profile_survivors(*, subject_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """`profile_survivor` of many people: one query finds those merged into someone (few), whose
    survivor is then followed one by one; everyone else is themselves."""
    wanted = set(subject_ids)
    merged = set(Merge.objects.filter(merged_id__in=wanted, undone_at__isnull=True).values_list("merged_id", flat=True))
    return {s: profile_survivor(subject_id=s) if s in merged else s for s in wanted}


def record_kind_slugs(*, shape: str) -> set[str]:
    """The slugs of the document or event kinds (`shape`) in the schema."""
    return set(RecordKind.objects.filter(shape=shape).values_list("slug", flat=True))


@dataclass(frozen=True)
class ProfileChange:
    """A field of a person set, changed or removed at `changed_at`: names and times, no value."""

    subject_id: uuid.UUID
    key: str
    changed_at: datetime
    id: uuid.UUID


def profile_changes_since(
    *,
    field_keys: Iterable[str],
    since: tuple[datetime, uuid.UUID] | None,
    limit: int,
    until: datetime | None = None,
) -> list[ProfileChange]:
    """Changes of these fields after position `since` ((time, row id); None: from the start) and
    up to `until`, oldest first, at most `limit`: values set or changed (their `updated_at`) and
    values replaced or removed (their history's `replaced_at`). No ciphertext is read, so nothing
    is decrypted: a changes feed says which fields changed, the gate gives their values."""
    keys = list(dict.fromkeys(field_keys))
    if not keys:
        return []
    pages: list[tuple[Any, ...]] = []
    for model, moment in ((ProfileValue, "updated_at"), (ProfileValueHistory, "replaced_at")):
        rows = model.objects.filter(definition__key__in=keys)
        if since is not None:
            at, after = since
            rows = rows.filter(Q(**{f"{moment}__gt": at}) | Q(**{moment: at, "id__gt": after}))
        if until is not None:
            rows = rows.filter(**{f"{moment}__lte": until})
        pages += rows.order_by(moment, "id").values_list("subject_id", "definition__key", moment, "id")[:limit]
    # A value replaced keeps its row id in the history: the same (id, time) is one change.
    changes = sorted({ProfileChange(*row) for row in pages}, key=lambda change: (change.changed_at, change.id))
    return changes[:limit]


def profile_survivor_expression(subject: Any) -> Subquery:
    """For a query of another app's: whom `subject` (an expression naming a subject id, such as
    `OuterRef("subject_id")`) was merged into, one hop, or NULL when it was not. Lets a hot path
    resolve an id and its merge in one query; `profile_survivor` follows longer chains."""
    merges = Merge.objects.filter(merged_id=subject, undone_at__isnull=True).order_by("-created_at")
    return Subquery(merges.values("survivor_id")[:1])


def profile_holders() -> QuerySet[ProfileValue, uuid.UUID]:
    """The ids of the people who hold profile values, in id order, once each: the candidates of
    a bulk job for a purpose that needs no consent. Page through with `.filter(subject_id__gt=
    last)[:n]` (the unique index on subject and field serves it)."""
    return ProfileValue.objects.order_by("subject_id").values_list("subject_id", flat=True).distinct()


def profile_restricted_among(*, subject_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these people restricted processing (GDPR Art. 18): rare, so all are fetched."""
    return set(Restriction.objects.values_list("subject_id", flat=True)) & set(subject_ids)
