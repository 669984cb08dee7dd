"""Reads of the rights app: a person's requests, and the staff queue."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from rights.models import OPEN_STATUSES, ExportBundle, RightsRequest

DUE_SOON = timedelta(days=7)


def rights_requests_of(*, subject_id: uuid.UUID) -> QuerySet[RightsRequest]:
    """The person's own requests, newest first, with their export bundle when one was made."""
    return RightsRequest.objects.filter(subject_id=subject_id).select_related("bundle").order_by("-received_at", "id")


def rights_request_of(*, subject_id: uuid.UUID, request_id: uuid.UUID) -> RightsRequest | None:
    return rights_requests_of(subject_id=subject_id).filter(pk=request_id).first()


def pending_erasure_of(*, subject_id: uuid.UUID) -> RightsRequest | None:
    return rights_requests_of(subject_id=subject_id).filter(kind="erasure", status__in=OPEN_STATUSES).first()


def export_bundle_of(*, subject_id: uuid.UUID, bundle_id: uuid.UUID) -> ExportBundle | None:
    return ExportBundle.objects.filter(subject_id=subject_id, pk=bundle_id).first()


@dataclass(frozen=True)
class QueueFlags:
    overdue: bool
    due_soon: bool


def queue_flags(request: RightsRequest, now: datetime | None = None) -> QueueFlags:
    """Overdue, or due within seven days: what the staff queue and the digest flag."""
    now = now or timezone.now()
    deadline = request.deadline
    return QueueFlags(
        overdue=request.is_open and deadline < now, due_soon=request.is_open and now <= deadline < now + DUE_SOON
    )


def unscoped_rights_queue(*, include_closed: bool = False) -> QuerySet[RightsRequest]:
    """Every person's requests for staff, the earliest deadline first; open ones only unless asked."""
    requests = RightsRequest.objects.select_related("bundle").annotate(
        deadline_at=Coalesce("extended_due_at", "due_at")
    )
    if not include_closed:
        requests = requests.filter(status__in=OPEN_STATUSES)
    return requests.order_by("deadline_at", "received_at", "id")


def unscoped_rights_request(*, request_id: uuid.UUID) -> RightsRequest | None:
    return RightsRequest.objects.select_related("bundle").filter(pk=request_id).first()


def unscoped_due_soon(*, now: datetime | None = None) -> list[RightsRequest]:
    """Open requests overdue or due within seven days, for the daily digest."""
    now = now or timezone.now()
    soon = now + DUE_SOON
    late = Q(extended_due_at__lt=soon) | Q(extended_due_at__isnull=True, due_at__lt=soon)
    return list(unscoped_rights_queue().filter(late))
