"""The API's shared policy: the one error envelope for every error, pagination, and the scoped
base of the person-facing views (authentication lives in vault/authentication.py, which DRF
imports while loading its views).

Every API error has the shape of django-allauth's headless API (DESIGN.md section 4):
``{"status": 400, "errors": [{"code": "required", "message": "...", "param": "email"}]}``.
Error messages never echo submitted values, so personal data cannot leak through them.
"""

import functools
import logging
import uuid
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.views import defaults
from django.views.csrf import csrf_failure as django_csrf_failure
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback

from vault.envelope import error_body, error_item, json_error_response
from vault.errors import ApplicationError, ErrorKind

logger = logging.getLogger(__name__)

# What each kind of domain error (vault/errors.py) answers over HTTP.
KIND_STATUS: dict[ErrorKind, int] = {
    ErrorKind.INVALID: status.HTTP_400_BAD_REQUEST,
    ErrorKind.NOT_AUTHENTICATED: status.HTTP_401_UNAUTHORIZED,
    ErrorKind.FORBIDDEN: status.HTTP_403_FORBIDDEN,
    ErrorKind.NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorKind.CONFLICT: status.HTTP_409_CONFLICT,
    ErrorKind.GONE: status.HTTP_410_GONE,
    ErrorKind.TOO_LARGE: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    ErrorKind.UNAVAILABLE: status.HTTP_503_SERVICE_UNAVAILABLE,
}


# DRF's messages for these codes quote the submitted value ('"ada@example.com" is not a valid
# choice.'); they are replaced so that no input, possibly personal, is echoed back or logged.
_ECHOING_CODES = {
    "invalid_choice": "Not one of the allowed choices.",
    "does_not_exist": "No such object.",
    "no_match": "No such object.",
    "incorrect_match": "No such object.",
    "incorrect_type": "Wrong type of value.",
    "not_a_list": "Expected a list.",
    "not_a_dict": "Expected an object.",
}


def _flatten(details: Any, param: str | None = None) -> list[dict[str, Any]]:
    """Turn DRF's nested `get_full_details()` into flat errors, naming nested fields `a.b.0`."""
    if isinstance(details, dict) and set(details) == {"message", "code"}:
        code = str(details["code"])
        return [error_item(code, _ECHOING_CODES.get(code, str(details["message"])), param)]
    if isinstance(details, dict):
        errors = []
        for key, value in details.items():
            child = None if key in ("non_field_errors", "detail") else str(key)
            errors += _flatten(value, child if param is None or child is None else f"{param}.{child}")
        return errors
    if isinstance(details, list):
        errors = []
        for index, value in enumerate(details):
            # A list of plain errors belongs to `param`; a list of objects is indexed.
            is_leaf = isinstance(value, dict) and set(value) == {"message", "code"}
            errors += _flatten(value, param if is_leaf else f"{param}.{index}" if param else str(index))
        return errors
    return [error_item("invalid", str(details), param)]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every API error, expected or not, leaves in the envelope."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, ApplicationError):
        set_rollback()
        code = KIND_STATUS[exc.kind]
        errors = [error_item(problem.code, problem.message, problem.param) for problem in exc.problems]
        return Response(error_body(code, errors), status=code)

    if not isinstance(exc, exceptions.APIException):
        logger.exception("Unhandled error in API view %s", type(context.get("view")).__name__)
        set_rollback()
        body = error_body(500, [error_item("server_error", "An unexpected error occurred.")])
        return Response(body, status=status.HTTP_500_INTERNAL_SERVER_ERROR)

    headers = {}
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if wait := getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(wait))

    errors = _flatten(exc.get_full_details())
    set_rollback()
    return Response(error_body(exc.status_code, errors), status=exc.status_code, headers=headers)


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


@functools.cache
def paginated(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The shape `Pagination` answers with, around `item`, for a view's OpenAPI `responses` (the
    schema generator cannot see pagination done inside an APIView). One class per item, so two
    views listing the same items share one schema component."""
    name = f"Paginated{item.__name__}List"
    return type(
        name,
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
            "__qualname__": name,
        },
    )


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def handler400(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return json_error_response(400, "bad_request", "The request could not be read.")
    return defaults.bad_request(request, exception)


def handler403(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return json_error_response(403, "permission_denied", "You do not have permission to do this.")
    return defaults.permission_denied(request, exception)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the envelope on the API, Django's page elsewhere."""
    if _is_api(request):
        return json_error_response(403, "csrf_failed", "The request's CSRF token is missing or wrong.")

    return django_csrf_failure(request, reason=reason)


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The root URLconf's 404 handler: the envelope under /api/, Django's page elsewhere."""
    if _is_api(request):
        return json_error_response(404, "not_found", "Not found.")
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return json_error_response(500, "server_error", "An unexpected error occurred.")
    return defaults.server_error(request)


class PersonAPIView(APIView):
    """The base of every API view a person calls about themselves.

    The subject is the caller (`self.subject`), never a URL or body parameter, so no one reaches
    another person's data through such a view. Subclasses cannot loosen it silently: defining
    `permission_classes` without `IsAuthenticated`, or redefining `subject` or the methods that
    run the permission checks (`initial`, `check_permissions`, `get_permissions`), fails at import.
    A view that acts on someone else (staff, partners) does not derive from this base and names
    what it reads with a shouting `unscoped_` prefix.
    """

    permission_classes = (permissions.IsAuthenticated,)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        redefined = {"subject", "get_permissions", "check_permissions", "initial"} & set(vars(cls))
        if redefined:
            raise TypeError(f"{cls.__name__} must not redefine {', '.join(sorted(redefined))} of PersonAPIView.")
        if not any(
            isinstance(permission, type) and issubclass(permission, permissions.IsAuthenticated)
            for permission in cls.permission_classes
        ):
            raise TypeError(f"{cls.__name__}: a person's view must keep IsAuthenticated in permission_classes.")

    @property
    def subject(self) -> uuid.UUID:
        subject = self.request.user.pk
        if not isinstance(subject, uuid.UUID):  # IsAuthenticated ran first; this is a safety net
            raise exceptions.NotAuthenticated()
        return subject
