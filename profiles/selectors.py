"""Reads of the profiles app: the schema, and the person's own listing (read through the gate:
personal data is only ever decrypted by `profiles.gate`)."""

import uuid
from typing import Any

from django.db.models import QuerySet

from profiles.gate import RIGHTS_PURPOSE, Actor, profile_read
from profiles.models import FieldDefinition, Merge, ProfileValue, Restriction


def person_fields() -> list[FieldDefinition]:
    """The fields a person sees in their portal and API, deprecated ones included (their values
    stay visible until retention removes them)."""
    return list(FieldDefinition.objects.filter(person_can_view=True).prefetch_related("purposes"))


def unscoped_field_definitions() -> QuerySet[FieldDefinition]:
    """Every field definition, for staff: the whole schema, not one person's view of it."""
    return FieldDefinition.objects.prefetch_related("purposes")


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


def profile_is_restricted(*, subject_id: uuid.UUID) -> bool:
    """Whether the person restricted processing (GDPR Art. 18)."""
    return Restriction.objects.filter(subject_id=subject_id).exists()


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


def profile_holders() -> QuerySet[ProfileValue, uuid.UUID]:
    """The ids of the people who hold profile values, in id order, once each: the candidates of
    a bulk job for a purpose that needs no consent. Page through with `.filter(subject_id__gt=
    last)[:n]` (the unique index on subject and field serves it)."""
    return ProfileValue.objects.order_by("subject_id").values_list("subject_id", flat=True).distinct()


def profile_restricted_among(*, subject_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these people restricted processing (GDPR Art. 18): rare, so all are fetched."""
    return set(Restriction.objects.values_list("subject_id", flat=True)) & set(subject_ids)
