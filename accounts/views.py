"""Endpoints that providers call, not people: security events pushed to us
(accounts/social/security_events.py). Each answers in the API's error envelope with
`Cache-Control: no-store`, takes no cookie or CSRF token (the signed token is the credential),
is rate-limited per client address (`API_THROTTLE_SECURITY_EVENTS`) and refuses bodies larger
than a token can be."""

from collections.abc import Mapping
from typing import Any

from rest_framework import permissions, throttling
from rest_framework.parsers import BaseParser, FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.social.security_events import (
    MAX_TOKEN_BYTES,
    SecurityTokenInvalid,
    SecurityTokenTooLarge,
    google_risc_event_receive,
    oidc_backchannel_logout,
)


class SecurityEventTokenParser(BaseParser):
    """A Security Event Token pushed as RFC 8935 asks: the compact JWT as the whole body."""

    media_type = "application/secevent+jwt"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> dict[str, str]:
        body = stream.read(MAX_TOKEN_BYTES + 1) if stream is not None else b""
        if len(body) > MAX_TOKEN_BYTES:
            raise SecurityTokenTooLarge(param="token")
        try:
            return {"token": body.decode("ascii").strip()}
        except UnicodeDecodeError:
            raise SecurityTokenInvalid(param="token") from None


def _field(request: Request, name: str) -> object:
    data = request.data
    return data.get(name) if isinstance(data, Mapping) else None


class SecurityEventView(APIView):
    authentication_classes = ()  # no cookie, no session: the token is the credential (and no CSRF)
    permission_classes = (permissions.AllowAny,)
    throttle_classes = (throttling.ScopedRateThrottle,)
    throttle_scope = "security_events"
    error_envelope = True  # the request guard (vault/http.py) refuses in the envelope here too
    schema = None  # not part of the person-facing API's OpenAPI document

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > MAX_TOKEN_BYTES + 1024:
            raise SecurityTokenTooLarge()

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response


class BackchannelLogoutView(SecurityEventView):
    """OpenID Connect Back-Channel Logout 1.0: `logout_token`, form-encoded. 200 (empty) on
    success, also for a subject we do not know; 400 in the envelope for a bad token."""

    parser_classes = (FormParser,)

    def post(self, request: Request, provider_id: str) -> Response:
        token = _field(request, "logout_token")
        if not isinstance(token, str) or not token:
            raise SecurityTokenInvalid("A logout_token is required.", code="required", param="logout_token")
        oidc_backchannel_logout(provider_id=provider_id, logout_token=token)
        return Response(status=200)


class GoogleRiscView(SecurityEventView):
    """Google Cross-Account Protection: a Security Event Token as the body. 202 (empty) when
    accepted, also for an unknown account or event; 400 in the envelope with RFC 8935's `err`
    and `description` besides, for a bad token."""

    parser_classes = (SecurityEventTokenParser,)

    def post(self, request: Request) -> Response:
        token = _field(request, "token")
        if not isinstance(token, str) or not token:
            raise SecurityTokenInvalid("The body must be a security event token.", code="required", param="token")
        google_risc_event_receive(token=token)
        return Response(status=202)

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if isinstance(exc, SecurityTokenInvalid) and isinstance(response.data, dict):
            response.data = {**response.data, "err": exc.set_error, "description": exc.message}
        return response
