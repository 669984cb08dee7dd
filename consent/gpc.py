"""Global Privacy Control (https://w3c.github.io/gpc/): a request carries the signal only when its
`Sec-GPC` header is exactly "1". For a signed-in person the signal is honoured once (their
sale/sharing purposes are withdrawn or refused, method "gpc"); `request.gpc` tells the consent
services not to grant such purposes in this request without the person's explicit override."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from consent.services import Evidence, consent_gpc_apply
from vault.api import json_error_response

HEADER = "Sec-GPC"


def request_evidence(request: HttpRequest) -> Evidence:
    """What a choice made in this request records as evidence (hashed and reduced by the services).
    REMOTE_ADDR only: a forwarded-for header is whatever the client wants it to be unless a
    trusted proxy sets it, and that proxy then belongs in REMOTE_ADDR handling of the server."""
    return Evidence(ip_address=request.META.get("REMOTE_ADDR", ""), user_agent=request.headers.get("User-Agent", ""))


class GlobalPrivacyControlMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        value = request.headers.get(HEADER)
        if value is not None and value != "1":
            message = 'Sec-GPC must be exactly "1" (or absent).'
            if request.path.startswith("/api/"):
                return json_error_response(400, "invalid_gpc_header", message)
            return HttpResponseBadRequest(message)
        request.gpc = value == "1"  # type: ignore[attr-defined]
        user = getattr(request, "user", None)
        if request.gpc and user is not None and user.is_authenticated:  # type: ignore[attr-defined]
            # Cheap when already honoured: it records nothing for purposes already opted out of.
            consent_gpc_apply(subject_id=user.pk, evidence=request_evidence(request))
        return self.get_response(request)


@require_GET
@cache_control(public=True, max_age=86400)
def gpc_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"gpc": True, "lastUpdate": settings.VAULT_GPC_LAST_UPDATE})
