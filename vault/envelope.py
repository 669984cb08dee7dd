"""The API's one error envelope, `{"status": 400, "errors": [{"code", "message", "param"}]}`,
built without DRF so that middleware and plain Django views answer with the same shape as the
DRF exception handler (vault/api.py). Messages never echo input; a param is cut short."""

import re
from typing import Any

from django.http import JsonResponse


def error_body(status_code: int, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"status": status_code, "errors": errors}


MAX_PARAM_LENGTH = 64
_UNPRINTABLE = re.compile(r"[^\w.\-\[\]]", re.ASCII)


def safe_param(param: str) -> str:
    """A param as the envelope echoes it: a submitted key (an unknown field's name) may be
    10,000 characters long or hold control characters; it is cut short and reduced to plain
    characters, so an error never repeats what was sent in full."""
    cleaned = _UNPRINTABLE.sub("?", param)
    return cleaned if len(cleaned) <= MAX_PARAM_LENGTH else cleaned[: MAX_PARAM_LENGTH - 3] + "..."


def error_item(code: str, message: str, param: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"code": code, "message": message}
    if param is not None:
        item["param"] = safe_param(param)
    return item


def json_error_response(status_code: int, code: str, message: str) -> JsonResponse:
    """The envelope for errors raised outside DRF views (unknown API URLs, crashes in middleware)."""
    return JsonResponse(error_body(status_code, [error_item(code, message)]), status=status_code)
