"""A request's life: received, verified, in progress (perhaps extended), then completed,
rejected or cancelled. Every transition is one audit entry, named `rights.<step>`, about the
person, naming the kind of request (never what it carries)."""

import calendar
import uuid
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.selectors import account_exists
from profiles.gate import RIGHTS_PURPOSE, Actor
from rights.errors import (
    ErasurePending,
    ExtensionTooLong,
    GracePeriodOver,
    InvalidTransition,
    NotCancellable,
    PersonErased,
    ReasonRequired,
    RequestNotFound,
    RequestNotOpen,
)
from rights.models import OPEN_STATUSES, Channel, Kind, RightsRequest, Status, Verification
from vault.audit import audit_record
from vault.crypto import subject_is_erased
from vault.fields import seal

MAX_EXTENSION_MONTHS = 2


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus calendar months, the day clamped to the month's end (31 Jan + 1 = 28/29 Feb):
    GDPR's "one month" counts in calendar months."""
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def transition_audit(request: RightsRequest, step: str, actor: Actor) -> None:
    audit_record(
        **actor.audit(),
        action=f"rights.{step}",
        purpose=RIGHTS_PURPOSE,
        fields=[request.kind],
        subject_id=request.subject_id,
    )


def subject_check(subject_id: uuid.UUID) -> None:
    """A request is about a living account: never about someone erased (or never known)."""
    if subject_is_erased(subject_id) or not account_exists(subject_id=subject_id):
        raise PersonErased()


def request_record(
    *,
    subject_id: uuid.UUID,
    kind: str,
    channel: str,
    verification: str,
    actor: Actor,
    details: Any = None,
    purposes: list[str] | None = None,
    note: str = "",
    now: datetime | None = None,
) -> RightsRequest:
    """Record a request as received, and as verified at once when `verification` says how (a
    re-authentication, the session for a request that only lessens processing, or staff with a
    note). `details`, when given, is sealed under the person's key."""
    subject_check(subject_id)
    now = now or timezone.now()
    request = RightsRequest(
        subject_id=subject_id,
        kind=Kind(kind),
        channel=Channel(channel),
        received_at=now,
        due_at=add_months(now, 1),
        purposes=list(purposes or []),
    )
    if details is not None:
        seal(request, "details", details)
    if note.strip():
        seal(request, "verification_note", note.strip())
    try:
        with transaction.atomic():
            request.save(force_insert=True)
            transition_audit(request, "receive", actor)
            if verification:
                _verify(request, verification, actor, now)
    except IntegrityError:
        if kind == Kind.ERASURE:
            raise ErasurePending() from None
        raise
    return request


def _verify(request: RightsRequest, verification: str, actor: Actor, now: datetime) -> None:
    request.status = Status.VERIFIED
    request.verification = Verification(verification)
    request.verified_at = now
    request.verified_by = actor.id if verification == Verification.STAFF else ""
    request.save(update_fields=["status", "verification", "verified_at", "verified_by", "updated_at"])
    transition_audit(request, "verify", actor)


def open_request_for_update(request_id: uuid.UUID, *, statuses: tuple[str, ...] = OPEN_STATUSES) -> RightsRequest:
    """The request, locked for this transaction; a closed one (or one not in `statuses`) is refused."""
    request = RightsRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None:
        raise RequestNotFound()
    if request.status not in OPEN_STATUSES:
        raise RequestNotOpen()
    if request.status not in statuses:
        raise InvalidTransition()
    return request


def request_verify_by_staff(*, request_id: uuid.UUID, actor: Actor, note: str) -> RightsRequest:
    """Staff verified the person's identity for a request received offline; the note (how) is
    sealed with the request."""
    if not note.strip():
        raise ReasonRequired("Say how the person was verified.", param="note")
    with transaction.atomic():
        request = open_request_for_update(request_id, statuses=(Status.RECEIVED,))
        seal(request, "verification_note", note.strip())
        request.save(update_fields=["verification_note", "updated_at"])
        _verify(request, Verification.STAFF, actor, timezone.now())
    return request


def rights_request_extend(*, request_id: uuid.UUID, actor: Actor, months: int, reason: str) -> RightsRequest:
    """Extend the deadline by up to two months in all (Art. 12(3)), with a reason the person sees."""
    if not reason.strip():
        raise ReasonRequired()
    if not 1 <= months <= MAX_EXTENSION_MONTHS:
        raise ExtensionTooLong()
    with transaction.atomic():
        # Not while a job works on it: an extended request can be claimed by a job again.
        request = open_request_for_update(request_id, statuses=(Status.RECEIVED, Status.VERIFIED, Status.EXTENDED))
        extended = add_months(request.due_at, months)
        if extended > add_months(request.due_at, MAX_EXTENSION_MONTHS) or (
            request.extended_due_at and extended <= request.extended_due_at
        ):
            raise ExtensionTooLong()
        request.extended_due_at = extended
        request.extension_reason = reason.strip()
        request.status = Status.EXTENDED
        request.save(update_fields=["extended_due_at", "extension_reason", "status", "updated_at"])
        transition_audit(request, "extend", actor)
    return request


def rights_request_reject(*, request_id: uuid.UUID, actor: Actor, reason: str) -> RightsRequest:
    """Refuse a request (manifestly unfounded or excessive, identity not verified), saying why."""
    if not reason.strip():
        raise ReasonRequired()
    with transaction.atomic():
        request = open_request_for_update(request_id)
        request.status = Status.REJECTED
        request.rejection_reason = reason.strip()
        request.completed_at = timezone.now()
        request.save(update_fields=["status", "rejection_reason", "completed_at", "updated_at"])
        transition_audit(request, "reject", actor)
    return request


def request_complete(request: RightsRequest, actor: Actor) -> None:
    """Close `request` (locked or just made by the caller) as done."""
    request.status = Status.COMPLETED
    request.progress = 100
    request.completed_at = timezone.now()
    request.save(update_fields=["status", "progress", "completed_at", "updated_at"])
    transition_audit(request, "complete", actor)


def request_start(request: RightsRequest, actor: Actor) -> None:
    request.status = Status.IN_PROGRESS
    request.save(update_fields=["status", "updated_at"])
    transition_audit(request, "start", actor)


def rights_request_cancel(*, subject_id: uuid.UUID, request_id: uuid.UUID) -> RightsRequest:
    """The person withdraws their own request while nothing irreversible has started."""
    with transaction.atomic():
        request = RightsRequest.objects.select_for_update().filter(pk=request_id, subject_id=subject_id).first()
        if request is None:
            raise RequestNotFound()
        if request.status not in (Status.RECEIVED, Status.VERIFIED, Status.EXTENDED):
            raise NotCancellable()
        if request.kind == Kind.ERASURE and request.grace_ends_at and request.grace_ends_at <= timezone.now():
            raise GracePeriodOver()
        request.status = Status.CANCELLED
        request.completed_at = timezone.now()
        request.save(update_fields=["status", "completed_at", "updated_at"])
        transition_audit(request, "cancel", Actor.person(subject_id))
    return request


def rights_legal_hold_set(*, request_id: uuid.UUID, actor: Actor, reason: str) -> RightsRequest:
    """Pause an erasure (a legal claim, an investigation) with a reason the person sees."""
    if not reason.strip():
        raise ReasonRequired()
    with transaction.atomic():
        request = open_request_for_update(request_id)
        if request.kind != Kind.ERASURE:
            raise InvalidTransition("Only an erasure can be put on legal hold.")
        request.legal_hold, request.legal_hold_reason = True, reason.strip()
        request.save(update_fields=["legal_hold", "legal_hold_reason", "updated_at"])
        transition_audit(request, "hold", actor)
    return request


def rights_legal_hold_lift(*, request_id: uuid.UUID, actor: Actor) -> RightsRequest:
    """Lift the hold; an erasure whose grace period is over then runs at the next sweep."""
    with transaction.atomic():
        request = open_request_for_update(request_id)
        if not request.legal_hold:
            raise InvalidTransition("This request is not on legal hold.")
        request.legal_hold, request.legal_hold_reason = False, ""
        request.save(update_fields=["legal_hold", "legal_hold_reason", "updated_at"])
        transition_audit(request, "hold_lift", actor)
    return request
