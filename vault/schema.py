"""OpenAPI: extensions for the project's own API classes (loaded in VaultConfig.ready), and the
post-processing hook that documents the error envelope on every operation.

Every operation answers errors in the envelope `{"status": ..., "errors": [...]}` (the exception
handler in vault/api.py and the request guard in vault/http.py give nothing else). The statuses
each can answer follow from its method and path, so the schema says so once, here, instead of
on each view; the schema fuzzing in the test suite fails on any status an operation gives that
its entry does not list.
"""

from typing import Any

from drf_spectacular.authentication import SessionScheme


class ApiSessionScheme(SessionScheme):
    target_class = "vault.authentication.ApiSessionAuthentication"


ERROR_RESPONSES: dict[str, str] = {
    "400": "The request is not valid; each error's `param` names the input it blames.",
    "401": "Not signed in.",
    "403": "Signed in, and not allowed (a missing consent, a staff session without MFA, ...).",
    "404": "No such object of yours.",
    "405": "This method is not allowed here.",
    "406": "The API answers JSON only.",
    "409": "The current state does not allow this.",
    "410": "The person's data was erased.",
    "413": "The request body is larger than the server accepts.",
    "415": "The API takes JSON bodies only.",
    "429": "Too many requests; `Retry-After` says when to try again.",
    "503": "A service this operation needs (mail, a provider) did not answer; try again later.",
}
_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "errors"],
    "properties": {
        "status": {"type": "integer"},
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "Stable, part of the contract."},
                    "message": {"type": "string", "description": "For people; never echoes input."},
                    "param": {"type": "string", "description": "The input blamed, `a.b.0` when nested."},
                },
            },
        },
    },
}


# Which error statuses an operation can answer: every operation can be refused (400 for a bad
# query or address, 401, 403, 405, 406, 410 for an erased person, 429); only those that take a
# body can find it too large or of the wrong type (413, 415) or meet a conflicting state or a
# service that did not answer (409, 503); only a path naming an object can find none (404).
_ANY_OPERATION = ("400", "401", "403", "405", "406", "410", "429")
_WITH_A_BODY = ("409", "413", "415", "503")
_WRITES = frozenset({"post", "put", "patch", "delete"})


def error_envelope_hook(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS: add the error envelope, for the statuses each
    operation can answer, to every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = _ERROR_SCHEMA
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, path_item in result.get("paths", {}).items():
        for method, operation in path_item.items():
            statuses = [*_ANY_OPERATION]
            if method in _WRITES:
                statuses += _WITH_A_BODY
            if "{" in path:
                statuses.append("404")
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses):
                responses.setdefault(status, {"description": ERROR_RESPONSES[status], "content": envelope})
    return result
