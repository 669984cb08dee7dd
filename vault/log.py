"""Request ids and the personal-data filter for every log line.

Each request gets an id (the caller's `X-Request-ID` when it is well formed, else a new one),
echoed in the response header and attached to every log record, including those of Celery tasks
the request enqueued. `PersonalDataFilter` scrubs what looks like personal data from messages
and exception text before any handler formats them: logs are copied to places the vault's
erasure cannot reach, so they must never hold personal data in the first place.
"""

import logging
import re
import traceback
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest, HttpResponse

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
HEADER = "X-Request-ID"


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        # Django logs a 4xx or 5xx ("Not Found: /x") after the middleware has returned; the
        # filter then finds the id on the request the record carries.
        request.request_id = request_id  # type: ignore[attr-defined]
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id == "-":  # outside the middleware: Django's own lines about a response
            request_id = getattr(getattr(record, "request", None), "request_id", request_id)
        record.request_id = request_id
        return True


# Patterns for personal data that can turn up in log messages: an exception text that quotes
# a value, a URL with an address in its query. Order matters: emails before phone numbers.
_SCRUBBERS: list[tuple[re.Pattern[str], str]] = [
    # Confirmation links are bearer tokens: whoever reads one can confirm in the person's name.
    (re.compile(r"(/consent/(?:confirm|parental)/)[^/\s\"']+"), r"\1[token]"),
    # Credentials in connection URLs (a broker or database error quoting its URL).
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s:@]*:[^/\s@]+@"), r"\1[credentials]@"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]"),
    (
        re.compile(r"(?i)\b(bearer|token|secret|password|passwd|api[_-]?key)\b([\"']?\s*[:=]\s*|\s+)[^\s,;&\"']+"),
        r"\1\2[secret]",
    ),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), "[ip]"),
    (
        re.compile(
            r"(?i)(?<![\w:])(?:(?:[0-9a-f]{1,4}:){4,7}[0-9a-f]{1,4}"  # full IPv6
            r"|(?:[0-9a-f]{1,4}:){0,6}:(?::?[0-9a-f]{1,4}){1,7})(?![\w:])"  # compressed with ::
        ),
        "[ip]",
    ),
    # Phone numbers: "+" and 8 or more digits and separators; or 3 or more groups of digits
    # split by spaces, dashes or parentheses; or a bare run of 10 to 15 digits. Never dots (they
    # would take decimals and timestamps), never inside a word or base64 text.
    (
        re.compile(r"(?<![\w/+-])(?:\+\d[\d ()-]{6,}\d|\(?\d{1,5}\)?(?:[ -]+\(?\d{1,5}\)?){2,}|\d{10,15})(?![\w/+=])"),
        "[phone]",
    ),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b(?!T\d)"), "[date]"),
]


def scrub(text: str) -> str:
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    return text


def _scrubbed(value: Any, depth: int = 0) -> Any:
    """A log record's extra field made safe to format: a request becomes its method and path
    (its repr would carry the query string), containers are scrubbed item by item, any other
    object becomes its scrubbed text, so no formatter can render personal data from it."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, HttpRequest):
        return f"{value.method} {scrub(value.path)}"
    if depth < 4 and isinstance(value, dict):
        return {scrub(str(key)): _scrubbed(item, depth + 1) for key, item in value.items()}
    if depth < 4 and isinstance(value, list | tuple | set | frozenset):
        return [_scrubbed(item, depth + 1) for item in value]
    return scrub(str(value))


class PersonalDataFilter(logging.Filter):
    """Replaces emails, phone numbers, IP addresses, dates and credentials with placeholders.

    A safety net, not a licence: code must still not log values. Works on the formatted message
    (so arguments are covered), on exception text and on every `extra` field, objects included
    (Django attaches the request to its lines, whose repr holds the query string).
    """

    _STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)).rstrip())
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in self._STANDARD:
                setattr(record, key, _scrubbed(value))
        return True
