"""Retention (DESIGN.md invariant 6): values, earlier values, documents and events are deleted
once their retention period has passed, in bounded batches that several workers can share."""

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from profiles.models import ProfileDocument, ProfileEvent, ProfileValue, ProfileValueHistory
from vault.audit import audit_record_many

_RETAINED: tuple[tuple[type[Any], str], ...] = (
    (ProfileValue, "definition__key"),
    (ProfileValueHistory, "definition__key"),
    (ProfileDocument, "kind__slug"),
    (ProfileEvent, "kind__slug"),
)


@dataclass
class RetentionReport:
    """What a retention run deleted (or, dry, would delete): rows per model and field or kind."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(sum(by_name.values()) for by_name in self.counts.values())


def retention_run(
    *, now: datetime | None = None, dry_run: bool = False, batch_size: int | None = None
) -> RetentionReport:
    """Delete values, history, documents and events past their retention, in bounded batches
    (one short transaction each, audited per person), so a large backlog never holds long locks."""
    now = now or timezone.now()
    batch_size = batch_size or settings.VAULT_RETENTION_BATCH
    report = RetentionReport()
    for model, name_path in _RETAINED:
        label = model._meta.model_name or ""
        expired = model.objects.filter(expires_at__lte=now)
        if dry_run:
            grouped = expired.order_by().values(name_path).annotate(n=models.Count("pk"))
            report.counts[label] = dict(grouped.values_list(name_path, "n"))
            continue
        counts: dict[str, int] = defaultdict(int)
        while True:
            with transaction.atomic():
                # Rows another run has locked are skipped, so two runs never take the same batch.
                batch = list(
                    expired.select_for_update(skip_locked=True, of=("self",))
                    .order_by()
                    .values_list("pk", "subject_id", name_path)[:batch_size]
                )
                if not batch:
                    break
                model.objects.filter(pk__in=[pk for pk, _, _ in batch]).delete()
                per_subject: dict[uuid.UUID, set[str]] = defaultdict(set)
                for _, subject, name in batch:
                    per_subject[subject].add(f"{label}.{name}")
                    counts[name] += 1
                by_names: dict[tuple[str, ...], list[uuid.UUID]] = defaultdict(list)
                for subject, names in per_subject.items():
                    by_names[tuple(sorted(names))].append(subject)
                for purged, subjects in by_names.items():
                    audit_record_many(
                        actor_type="system",
                        actor_id="retention",
                        action="profile.retention_purge",
                        fields=list(purged),
                        subject_ids=subjects,
                    )
        report.counts[label] = dict(counts)
    return report
