"""Reads of the rights app: a person's requests, and the staff queue."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Window
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from rights.models import OPEN_STATUSES, ExportBundle, Kind, RightsRequest, Status

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


# --- Aggregates for the staff's analytics (counts only, never a person) -----------------------

PERCENTILES = (50, 90)


@dataclass(frozen=True)
class KindTimes:
    """Requests of one kind received in a period, and how long the completed ones took:
    nearest-rank percentiles (the smallest time at least p% of them took no longer than)."""

    kind: str
    received: int
    completed: int
    days: dict[int, float]  # percentile -> days (empty when none completed)


def _rank(count: int, percentile: int) -> int:
    """The nearest rank of `percentile` among `count` ordered values (1-based)."""
    return max(1, -(-count * percentile // 100))


def rights_completion_times(*, since: datetime | None = None) -> list[KindTimes]:
    """Per kind, requests received since `since` and the median and 90th percentile of their time
    to completion, computed in the database: counts by GROUP BY, then only the rows at the needed
    ranks of a window ordered by duration (one row per kind and percentile comes back)."""
    requests = RightsRequest.objects.all() if since is None else RightsRequest.objects.filter(received_at__gte=since)
    counts = {
        row["kind"]: row
        for row in requests.values("kind")
        .annotate(received=Count("id"), completed=Count("id", filter=Q(status=Status.COMPLETED)))
        .order_by()
    }
    took = ExpressionWrapper(F("completed_at") - F("received_at"), output_field=DurationField())
    ranks = {_rank(row["completed"], p) for row in counts.values() if row["completed"] for p in PERCENTILES}
    at_rank: dict[tuple[str, int], timedelta] = {}
    if ranks:
        ranked = (
            requests.filter(status=Status.COMPLETED, completed_at__isnull=False)
            .annotate(
                took=took, rank=Window(RowNumber(), partition_by=[F("kind")], order_by=[took.asc(), F("id").asc()])
            )
            .filter(rank__in=sorted(ranks))
            .values_list("kind", "rank", "took")
        )
        at_rank = {(kind, rank): duration for kind, rank, duration in ranked}
    times = []
    for kind in Kind.values:
        row = counts.get(kind, {"received": 0, "completed": 0})
        days = {}
        for p in PERCENTILES if row["completed"] else ():
            duration = at_rank.get((kind, _rank(row["completed"], p)))
            if duration is not None:
                days[p] = duration.total_seconds() / 86400
        times.append(KindTimes(kind=kind, received=row["received"], completed=row["completed"], days=days))
    return times
