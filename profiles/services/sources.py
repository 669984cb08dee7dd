"""A source's data leaves with the source (DESIGN.md invariant 6): what a social provider put
in a person's profile is deleted when the person disconnects it."""

import uuid
from typing import Any

from django.db import transaction

from profiles.gate import Actor
from profiles.models import ProfileDocument, ProfileValue, ProfileValueHistory
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
