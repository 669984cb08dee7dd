"""OpenAPI: extensions for the project's own API classes (loaded in VaultConfig.ready), and the
post-processing hook that documents the error envelope on every operation.

Every operation can answer the envelope `{"status": ..., "errors": [...]}` with the statuses
below (the exception handler in vault/api.py and the request guard in vault/http.py give
nothing else), so the schema says so once, here, instead of on each view: a client, and the
schema fuzzing in the test suite, then find no undocumented status code.
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


def error_envelope_hook(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS: add the error envelope to every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = _ERROR_SCHEMA
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_RESPONSES.items():
                responses.setdefault(status, {"description": description, "content": envelope})
    return result
