"""Erasure of a person's profile (DESIGN.md invariant 3): once their keys are destroyed, their
rows are deleted too, in bounded batches, by a background task that calls this until it returns 0.

Nothing is decrypted (the keys may already be gone) and nothing is audited here: the rights app
writes the one tombstone of the erasure."""

import uuid
from typing import Any

from django.db import models, transaction

from profiles.models import (
    FieldDefinitionVersion,
    Merge,
    ProfileDocument,
    ProfileEvent,
    ProfileValue,
    ProfileValueHistory,
    Restriction,
)

# Every profiles table with rows about one person, and how a row names them.
_ERASED: tuple[tuple[type[models.Model], tuple[str, ...]], ...] = (
    (ProfileValue, ("subject_id",)),
    (ProfileValueHistory, ("subject_id",)),
    (ProfileDocument, ("subject_id",)),
    (ProfileEvent, ("subject_id",)),
    (Restriction, ("subject_id",)),
    (Merge, ("survivor_id", "merged_id")),
)


def _about(subject_id: uuid.UUID, columns: tuple[str, ...]) -> models.Q:
    condition = models.Q()
    for column in columns:
        condition |= models.Q(**{column: subject_id})
    return condition


def profile_data_erase(*, subject_id: uuid.UUID, batch_size: int = 1000) -> int:
    """Delete at most `batch_size` rows per table of the person's profile: values, earlier
    values, documents, events, their restriction and the merges they took part in (either side);
    and forget them as the author of schema changes, if they were staff. Returns how many rows
    this call deleted or cleared: 0 when nothing is left, so a task loops until then.

    Each table's batch is one short transaction; rows another worker is deleting are skipped
    (PostgreSQL), so several workers may share one person's erasure."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    subject_id = uuid.UUID(str(subject_id))
    done = 0
    for model, columns in _ERASED:
        with transaction.atomic():
            manager: Any = model._default_manager
            batch = list(
                manager.filter(_about(subject_id, columns))
                .select_for_update(skip_locked=True)
                .order_by()
                .values_list("pk", flat=True)[:batch_size]
            )
            if batch:
                done += manager.filter(pk__in=batch).delete()[0]
    # A staff member's schema changes name them by id only; the schema's history stays.
    with transaction.atomic():
        authored = list(
            FieldDefinitionVersion.objects.filter(changed_by=str(subject_id))
            .select_for_update(skip_locked=True)
            .order_by()
            .values_list("pk", flat=True)[:batch_size]
        )
        if authored:
            done += FieldDefinitionVersion.objects.filter(pk__in=authored).update(changed_by="")
    return done
