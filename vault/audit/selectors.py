"""Reads of the audit log: for the person it is about ("who accessed my data"), and for staff
auditing it (`audit_entries_search`: every entry, as stored).

The person sees when, what was done, which fields and for which purpose, and what kind of actor
it was. Staff are not named (an insider's id is no business of the person's, and the entry stays
available to the data protection officer); partners are named by their client id, which is what
the person consented to share with; another person acting is never identified, and no pseudonym
is ever shown.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from vault.models import AuditActorType, AuditEntry, AuditEntrySubject, AuditPseudonym


@dataclass(frozen=True)
class AccessEntry:
    when: datetime
    action: str
    purpose: str
    fields: list[str]
    actor_type: str
    actor_name: str  # a partner's client id or a system job's name; "" for staff and people
    by_self: bool  # the person themselves


def _entry(row: Any, own_pseudonym: str) -> AccessEntry:
    actor_type, actor_id = row["actor_type"], row["actor_id"]
    shown = actor_id if actor_type in (AuditActorType.PARTNER, AuditActorType.SYSTEM) else ""
    by_self = actor_type == AuditActorType.PERSON and actor_id.replace("-", "") == own_pseudonym
    return AccessEntry(
        when=row["created_at"],
        action=row["action"],
        purpose=row["purpose"],
        fields=list(row["fields"] or []),
        actor_type=actor_type,
        actor_name=shown,
        by_self=by_self,
    )


def audit_entries_about(*, subject_id: uuid.UUID, page: int = 1, per_page: int = 25, exclude_own: bool = False) -> Page:
    """One page (newest first) of the audit entries about the person; `object_list` holds
    `AccessEntry` items: those naming them alone and the batch entries naming them among others
    (`audit_record_batch`). `exclude_own` leaves out what the person did themselves. Reading
    never makes a pseudonym: someone with none has no entries."""
    pseudonym = AuditPseudonym.objects.filter(subject_id=subject_id).values_list("pseudonym", flat=True).first()
    if pseudonym is None:
        rows = AuditEntry.objects.none()
    else:
        # The seqs of both kinds as one UNION ALL subquery, each side on its own index; an OR of
        # the two conditions would have the database scan the whole log.
        alone = AuditEntry.objects.filter(subject_pseudonym=pseudonym).order_by().values("seq")
        in_batches = AuditEntrySubject.objects.filter(subject_pseudonym=pseudonym).order_by().values("entry_seq")
        rows = AuditEntry.objects.filter(seq__in=alone.union(in_batches, all=True)).order_by("-seq")
        if exclude_own:
            rows = rows.exclude(actor_type=AuditActorType.PERSON, actor_id=str(pseudonym))
    values = rows.values("created_at", "action", "purpose", "fields", "actor_type", "actor_id")
    result = Paginator(values, per_page).get_page(page)
    own = pseudonym.hex if pseudonym is not None else ""
    result.object_list = [_entry(row, own) for row in result.object_list]  # type: ignore[misc]
    return result


def audit_entries_search(
    *,
    actor_type: str = "",
    actor_id: str = "",
    action: str = "",
    purpose: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEntry]:
    """Every entry matching the filters given (an empty one matches all), newest first, for the
    staff audit log viewer. Entries hold names and opaque ids only (no values, by design), so
    they are shown as stored: the subject as its pseudonym, a person acting by theirs too.
    `action` matches a whole name or, ending in ".", every action under it ("consent.")."""
    rows = AuditEntry.objects.order_by("-seq")
    if actor_type:
        rows = rows.filter(actor_type=actor_type)
    if actor_id:
        rows = rows.filter(actor_id=actor_id)
    if action:
        rows = rows.filter(action__startswith=action) if action.endswith(".") else rows.filter(action=action)
    if purpose:
        rows = rows.filter(purpose=purpose)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    return rows
