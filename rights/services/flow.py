"""What each surface (portal, API, admin, commands) calls: a request submitted, verified by
staff, or completed by staff, routed to what its kind needs."""

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from consent.services import Evidence
from profiles.gate import Actor
from rights.errors import InvalidTransition, ReauthenticationRequired
from rights.models import Kind, RightsRequest, Status, Verification
from rights.services.erasure import erasure_grace_start, erasure_request
from rights.services.processing import (
    objection_request,
    rectification_complete,
    rectification_request,
    restriction_request,
)
from rights.services.requests import open_request_for_update, request_record, request_verify_by_staff
from rights.tasks import export_build

# Kinds that disclose, change or destroy data: a recent re-authentication (or staff) verifies them.
PROVEN = (Verification.REAUTHENTICATION, Verification.REAUTHENTICATION_MFA, Verification.STAFF)


def _export_enqueue(request: RightsRequest) -> None:
    request_id = request.pk
    transaction.on_commit(lambda: export_build.delay(str(request_id)))


def rights_request_submit(
    *,
    subject_id: uuid.UUID,
    kind: str,
    channel: str,
    verification: str,
    actor: Actor,
    confirm: bool = False,
    values: dict[str, Any] | None = None,
    purposes: list[str] | None = None,
    evidence: Evidence | None = None,
) -> RightsRequest:
    """A person's request (or one staff record for them, `verification` empty until verified)."""
    if kind in (Kind.ACCESS, Kind.EXPORT, Kind.ERASURE, Kind.RECTIFICATION) and verification not in ("", *PROVEN):
        raise ReauthenticationRequired()
    match kind:
        case Kind.ACCESS | Kind.EXPORT:
            with transaction.atomic():
                request = request_record(
                    subject_id=subject_id, kind=kind, channel=channel, verification=verification, actor=actor
                )
                if request.status == Status.VERIFIED:
                    _export_enqueue(request)
            return request
        case Kind.ERASURE:
            return erasure_request(
                subject_id=subject_id, channel=channel, verification=verification, actor=actor, confirm=confirm
            )
        case Kind.RECTIFICATION:
            return rectification_request(
                subject_id=subject_id, values=values or {}, channel=channel, verification=verification, actor=actor
            )
        case Kind.RESTRICTION:
            return restriction_request(subject_id=subject_id, channel=channel, actor=actor)
        case Kind.OBJECTION:
            return objection_request(
                subject_id=subject_id, purposes=purposes or [], channel=channel, actor=actor, evidence=evidence
            )
    raise InvalidTransition("Unknown kind of request.", param="kind")


def rights_request_verify(*, request_id: uuid.UUID, actor: Actor, note: str) -> RightsRequest:
    """Staff verified the person behind a request received offline; the request then proceeds."""
    with transaction.atomic():
        request = request_verify_by_staff(request_id=request_id, actor=actor, note=note)
        if request.kind in (Kind.ACCESS, Kind.EXPORT):
            _export_enqueue(request)
        elif request.kind == Kind.ERASURE:
            erasure_grace_start(request, timezone.now())
    return request


def rights_request_complete(*, request_id: uuid.UUID, actor: Actor) -> RightsRequest:
    """Staff complete what needs them: a rectification (its values are applied), or an access
    or export whose build they start again. Erasure completes by itself after its grace period."""
    with transaction.atomic():
        request = open_request_for_update(request_id)
        if request.kind == Kind.RECTIFICATION:
            return rectification_complete(request_id=request_id, actor=actor)
        if request.kind in (Kind.ACCESS, Kind.EXPORT) and request.status != Status.RECEIVED:
            _export_enqueue(request)
            return request
        if request.status == Status.RECEIVED:
            raise InvalidTransition("Verify the person's identity first.")
        raise InvalidTransition("An erasure runs by itself once its grace period is over.")
