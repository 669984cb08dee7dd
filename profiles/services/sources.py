"""A source's data leaves with the source (DESIGN.md invariant 6): what a social provider put
in a person's profile is deleted when the person disconnects it, unless the person chose to keep
a value as their own (`profile_source_keep`)."""

import uuid
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from django.db import transaction

from profiles.gate import Actor
from profiles.models import ProfileDocument, ProfileValue, ProfileValueHistory, Source
from vault.audit import audit_record


def profile_source_purge(*, subject_id: uuid.UUID, source: str, source_name: str, actor: Actor) -> int:
    """Delete what one source (a social provider) put in the person's profile: current and
    earlier values, and documents (DESIGN.md invariant 6: a disconnected provider's data goes).
    Returns how many rows were deleted; audited with the field and kind names."""
    deleted, names = 0, set()
    purged: tuple[tuple[Any, str], ...] = (
        (ProfileValue, "definition__key"),
        (ProfileValueHistory, "definition__key"),
        (ProfileDocument, "kind__slug"),
    )
    with transaction.atomic():
        for model, name_path in purged:
            rows = model.objects.filter(subject_id=subject_id, source=source, source_name=source_name)
            names |= {f"{model._meta.model_name}.{name}" for name in rows.values_list(name_path, flat=True)}
            deleted += rows.delete()[0]
        if deleted:
            audit_record(**actor.audit(), action="profile.source_purge", fields=sorted(names), subject_id=subject_id)
    return deleted


def profile_source_keep(
    *, subject_id: uuid.UUID, source: str, source_name: str, keys: Collection[str], actor: Actor
) -> list[str]:
    """Re-label the current values of these fields that one source (a social provider) brought
    as given by the person themselves (source `self_service`), so that the source's purge leaves
    them: the person chose to keep them as their own. Only fields the person may set themselves
    (self-service among the field's sources, and editable by the person) are re-labelled; their
    ciphertext is bound to the row, not to its source, so nothing is decrypted. Returns the keys
    re-labelled; the choice is one audit entry naming those fields (the ledger of this choice)."""
    if not keys:
        return []
    with transaction.atomic():
        rows = ProfileValue.objects.select_for_update().filter(
            subject_id=subject_id,
            source=source,
            source_name=source_name,
            definition__key__in=list(keys),
            definition__person_can_edit=True,
        )
        kept = sorted(
            key
            for key, allowed in rows.values_list("definition__key", "definition__allowed_sources")
            if Source.SELF_SERVICE in allowed
        )
        if kept:
            ProfileValue.objects.filter(
                subject_id=subject_id, source=source, source_name=source_name, definition__key__in=kept
            ).update(source=Source.SELF_SERVICE, source_name="")
            audit_record(
                **actor.audit(),
                action="profile.source_keep",
                fields=[f"profilevalue.{key}" for key in kept],
                subject_id=subject_id,
            )
    return kept


def profile_source_confirm(
    *, subject_id: uuid.UUID, source: str, source_name: str, keys: Collection[str], collected_at: Any
) -> int:
    """A source sent these fields' current values again, unchanged (a provider's refresh): they
    count as collected now, and their retention runs from now. Nothing is decrypted or re-sealed,
    and no history is written (the value did not change). Returns how many values."""
    rows = ProfileValue.objects.filter(
        subject_id=subject_id, source=source, source_name=source_name, definition__key__in=list(keys)
    ).select_related("definition")
    confirmed = 0
    with transaction.atomic():
        for row in rows.select_for_update(of=("self",)):
            row.collected_at = collected_at
            row.expires_at = collected_at + timedelta(days=row.definition.retention_days)
            row.save(update_fields=["collected_at", "expires_at", "updated_at"])
            confirmed += 1
    return confirmed
