"""Meta's data deletion callback and the public status page of its confirmation codes.

The callback is a server-to-server POST from Meta: no session, no CSRF token (a DRF view without
authentication, so CSRF is not enforced), rate-limited per calling address
(`API_THROTTLE_PROVIDER_CALLBACK`), its body limited like every other
(`DATA_UPLOAD_MAX_MEMORY_SIZE`; a longer `signed_request` than Meta ever sends is refused).
Errors leave in the API's envelope. The status page names no one: a code, its status and dates.
"""

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import parsers, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle
from rest_framework.views import APIView

from accounts.social.meta import MAX_SIGNED_REQUEST_LENGTH
from rights.models import ProviderDeletion
from rights.services.provider_deletion import facebook_deletion_request
from vault.errors import ApplicationError, ErrorKind


class BodyTooLarge(ApplicationError):
    kind = ErrorKind.TOO_LARGE
    code = "too_large"
    message = "The request body is larger than this server accepts."


class SignedRequestInput(serializers.Serializer):
    signed_request = serializers.CharField(max_length=MAX_SIGNED_REQUEST_LENGTH, trim_whitespace=True)


class DeletionOutput(serializers.Serializer):
    url = serializers.URLField(help_text="The public status page of this deletion.")
    confirmation_code = serializers.CharField(help_text="Shown to the person by Meta; names no one.")


class FacebookDataDeletionView(APIView):
    """Meta's "Data Deletion Request Callback URL" (docs/social-login.md)."""

    authentication_classes = ()
    permission_classes = (permissions.AllowAny,)
    parser_classes = (parsers.FormParser, parsers.MultiPartParser)
    throttle_classes = (AnonRateThrottle, ScopedRateThrottle)
    throttle_scope = "provider_callback"

    @extend_schema(
        operation_id="facebook_data_deletion",
        summary="Meta's data deletion callback",
        description="A form post with Meta's `signed_request` (HMAC-SHA256 under the Facebook app secret). "
        "Answers a confirmation code and the address of its status page; an unknown user gets the same answer. "
        "A forged, malformed or wrong-algorithm request is 400 `signed_request_invalid` and deletes nothing.",
        request={"application/x-www-form-urlencoded": SignedRequestInput},
        responses={
            200: DeletionOutput,
            400: OpenApiResponse(description="The error envelope: `signed_request_invalid`, or the field missing."),
            404: OpenApiResponse(description="The error envelope: no Facebook app is configured here."),
            413: OpenApiResponse(description="The error envelope: the body is too large."),
        },
        tags=["providers"],
    )
    def post(self, request: Request) -> Response:
        try:
            data = request.data
        except RequestDataTooBig:
            raise BodyTooLarge() from None
        given = SignedRequestInput(data=data)
        given.is_valid(raise_exception=True)
        deletion = facebook_deletion_request(signed_request=given.validated_data["signed_request"])
        url = request.build_absolute_uri(reverse("rights:provider-deletion", args=[deletion.code]))
        return Response(DeletionOutput({"url": url, "confirmation_code": deletion.code}).data)


def provider_deletion_status(request: HttpRequest, code: str) -> HttpResponse:
    """Public: the status of one deletion a provider asked for, by its confirmation code."""
    deletion = get_object_or_404(ProviderDeletion, code=code)
    return render(request, "rights/provider_deletion.html", {"deletion": deletion})
