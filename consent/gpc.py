"""Global Privacy Control (https://w3c.github.io/gpc/), all of it: a request carries the signal
only when its `Sec-GPC` header is "1" (the only value the specification gives a meaning; any
other is no signal, and is ignored like an absent header); `request.gpc` tells the consent
services not to grant a sale/sharing purpose in this request without the person's explicit
override; for a signed-in person, whether by the browser's session cookie or by an app's
session token, the signal is honoured once (`consent_gpc_apply`: their sale/sharing purposes are
withdrawn or refused, method "gpc"); `/.well-known/gpc.json` declares that we honour it.

`consent.services` re-exports `consent_gpc_apply`, so this module imports the services package
only inside its functions: at load time the package may be the one importing it."""

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from consent.models import NO_CHOICE_BASES, ConsentEvent, ConsentState, ConsentStatus, EventType, Method, Purpose
from vault.errors import ApplicationError
from vault.models import AuditActorType

if TYPE_CHECKING:
    from consent.services.evidence import Evidence

HEADER = "Sec-GPC"


def consent_gpc_apply(*, subject_id: uuid.UUID, evidence: "Evidence | None" = None) -> list[ConsentEvent]:
    """Honour a Global Privacy Control signal for a signed-in person, once per purpose: withdraw
    each sale/sharing purpose they granted (or object, for legitimate interest) and refuse those
    not yet decided. A purpose already opted out of, or already answered by GPC once, is left
    alone, so an override the person then makes in the portal stands."""
    from consent.services.ledger import NothingToRecord, event_record

    def not_opted_out(state: ConsentState, created: bool) -> None:
        if not created and state.status in (ConsentStatus.WITHDRAWN, ConsentStatus.REFUSED):
            raise NothingToRecord

    answered = set(
        ConsentEvent.objects.filter(subject_id=subject_id, method=Method.GPC).values_list("purpose_id", flat=True)
    )
    states = dict(
        ConsentState.objects.filter(subject_id=subject_id, purpose__is_sale_or_sharing=True).values_list(
            "purpose_id", "status"
        )
    )
    now = timezone.now()
    events = []
    purposes = (
        Purpose.objects.filter(is_sale_or_sharing=True, versions__effective_from__lte=now)
        .exclude(legal_basis__in=NO_CHOICE_BASES)
        .distinct()
    )
    for purpose in purposes:
        status = states.get(purpose.pk)
        if purpose.pk in answered or status in (ConsentStatus.WITHDRAWN, ConsentStatus.REFUSED):
            continue
        action = EventType.WITHDRAW if status in (ConsentStatus.GRANTED, ConsentStatus.PENDING) else EventType.REFUSE
        try:
            events.append(
                event_record(
                    action,
                    subject_id=subject_id,
                    purpose=purpose.slug,
                    policy_version=None,
                    method=Method.GPC,
                    evidence=evidence,
                    jurisdiction="",
                    actor_type=AuditActorType.PERSON,
                    actor_id="",
                    guard=not_opted_out,  # a parallel request may have just done it
                )
            )
        except NothingToRecord:
            continue
    return events


def request_evidence(request: HttpRequest) -> "Evidence":
    """What a choice made in this request records as evidence (hashed and reduced by the services).
    REMOTE_ADDR only: a forwarded-for header is whatever the client wants it to be unless a
    trusted proxy sets it, and that proxy then belongs in REMOTE_ADDR handling of the server."""
    from consent.services.evidence import Evidence

    return Evidence(ip_address=request.META.get("REMOTE_ADDR", ""), user_agent=request.headers.get("User-Agent", ""))


def request_person(request: HttpRequest) -> uuid.UUID | None:
    """Whom a request is for: the person signed in by the browser's session cookie, or the one
    whose session an app's token names (allauth headless's `X-Session-Token`). Django's
    middleware knows only the first; the API's authentication classes resolve the second, inside
    DRF's views, after every middleware. They are asked here too (without making the request
    authenticated: each view still authenticates it its own way), so that a signal means the same
    whichever way the person signed in. A token that does not authenticate names no one."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        pk: uuid.UUID = user.pk
        return pk
    from rest_framework.authentication import BaseAuthentication
    from rest_framework.exceptions import APIException
    from rest_framework.request import Request
    from rest_framework.settings import api_settings

    api_request = Request(request)
    classes = cast(list[type[BaseAuthentication]], api_settings.DEFAULT_AUTHENTICATION_CLASSES)
    for authentication_class in classes:
        try:
            result = authentication_class().authenticate(api_request)
        except (APIException, ApplicationError):  # refused (a bad token, staff without MFA): the view says so
            return None
        if result is not None and getattr(result[0], "is_authenticated", False):
            found: uuid.UUID = result[0].pk
            return found
    return None


class GlobalPrivacyControlMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # HTTP strips the whitespace around a field value; any value but "1" is no signal.
        request.gpc = request.headers.get(HEADER, "").strip() == "1"  # type: ignore[attr-defined]
        if request.gpc:  # type: ignore[attr-defined]
            subject_id = request_person(request)
            if subject_id is not None:
                # Cheap when already honoured: it records nothing for purposes already opted out of.
                consent_gpc_apply(subject_id=subject_id, evidence=request_evidence(request))
        return self.get_response(request)


@require_GET
@cache_control(public=True, max_age=86400)
def gpc_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"gpc": True, "lastUpdate": settings.VAULT_GPC_LAST_UPDATE})
