"""HTTP hygiene for every request: inputs no view should have to survive, and response headers
that keep personal data out of caches and switch off browser features the vault never uses.

`RequestGuardMiddleware` answers 4xx before any view runs to: a NUL byte in the path, the query
or a form field (PostgreSQL refuses NUL in text, which turned into a 500); a JSON body over
the upload limit (413), nested deeper than `MAX_JSON_DEPTH`, or holding a lone surrogate that no
UTF-8 column can store (400). API paths get the API's error envelope, and so do views elsewhere
whose class sets `error_envelope = True` (the endpoints providers call); pages a plain 400. (A
session cookie that is not a key Django could have made is no session: accounts/sessions.py.
The guard answers before the header middleware below, so its refusals carry no caching headers;
they carry no personal data either.)

Pages and API answers about a person must not be stored by a browser or any shared cache:
`Cache-Control: no-store` on every API response and on every page served to a signed-in person
(unless a view chose its own caching, as the public GPC and JWKS documents do). API answers vary
on the session cookie and on allauth's `X-Session-Token`, so a cache keyed on the URL alone can
never serve one person's answer to another. `Permissions-Policy` denies every powerful feature.
"""

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.multipartparser import MultiPartParserError
from django.urls import Resolver404, resolve
from django.utils.cache import add_never_cache_headers, patch_vary_headers

from vault.envelope import json_error_response

PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "browsing-topics",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
)
_PERSONAL_PREFIXES = ("/api/", "/_allauth/")


class PrivacyHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        is_api = request.path.startswith(_PERSONAL_PREFIXES)
        if is_api:
            patch_vary_headers(response, ("Cookie", "X-Session-Token"))
        signed_in = getattr(getattr(request, "user", None), "is_authenticated", False)
        if (is_api or signed_in) and not response.has_header("Cache-Control"):
            add_never_cache_headers(response)  # no-cache, no-store, must-revalidate, private
        return response


MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]")


def json_depth(body: str) -> int:
    """How deeply a JSON text nests (strings skipped): checked before parsing, because Python's
    parser recurses and fails on a body nested 100,000 deep."""
    depth = deepest = 0
    for char in _NOT_BRACKET.sub("", _JSON_STRING.sub("", body)):
        depth = depth + 1 if char in "[{" else depth - 1
        deepest = max(deepest, depth)
    return deepest


def _unstorable_text(value: object) -> bool:
    """A NUL character (PostgreSQL refuses it in text) or a lone surrogate (no UTF-8 column can
    store one) anywhere in a parsed JSON body, keys included (the depth is already bounded)."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode()
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_unstorable_text(key) or _unstorable_text(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_unstorable_text(item) for item in value)
    return False


def _holds_nul(fields: Iterable[tuple[str, list[Any]]]) -> bool:
    return any("\x00" in key or any("\x00" in str(value) for value in values) for key, values in fields)


def _answers_in_envelope(request: HttpRequest) -> bool:
    """Whether the view at this path answers in the API's envelope though it lives outside /api/
    (its class sets `error_envelope = True`: the endpoints providers call). Only asked when a
    request is refused, so ordinary requests pay nothing for it."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    view_class = getattr(match.func, "view_class", None) or getattr(match.func, "cls", None)
    return bool(getattr(view_class, "error_envelope", False))


class RequestGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        return self.get_response(request)

    def _refusal(self, request: HttpRequest) -> HttpResponse | None:
        is_api = request.path.startswith(_PERSONAL_PREFIXES)

        def refuse(status: int, code: str, message: str) -> HttpResponse:
            if is_api or _answers_in_envelope(request):
                return json_error_response(status, code, message)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")

        if "\x00" in request.path or _holds_nul(request.GET.lists()):
            return refuse(400, "invalid_characters", "The address holds a character that is not allowed.")
        if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
            return None
        content_type = request.content_type or ""
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data") and not is_api:
            # Forms are the portal's; the API takes JSON only and answers other bodies with 415.
            try:
                fields = list(request.POST.lists())
            except RequestDataTooBig:
                return refuse(413, "too_large", "The request body is larger than this server accepts.")
            except MultiPartParserError:
                return refuse(400, "invalid_form", "The form could not be read.")
            if _holds_nul(fields):
                return refuse(400, "invalid_characters", "The form holds a character that is not allowed.")
        elif content_type.endswith("json") and is_api:
            try:
                text = request.body.decode("utf-8", errors="replace")
            except RequestDataTooBig:
                return refuse(413, "too_large", "The request body is larger than this server accepts.")
            if json_depth(text) > MAX_JSON_DEPTH:
                return refuse(400, "too_deep", f"JSON may nest at most {MAX_JSON_DEPTH} levels.")
            try:
                parsed = json.loads(text)
            except ValueError:
                return None  # the view's parser answers malformed JSON with its own 400
            if _unstorable_text(parsed):
                return refuse(400, "invalid_characters", "The text holds a character that is not allowed.")
        return None
