from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from vault.api import PersonAPIView


class AccountOutput(serializers.Serializer):
    id = serializers.UUIDField(help_text="The opaque subject id used everywhere in the vault.")
    email = serializers.EmailField(help_text="The login identifier.")
    is_staff = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class MeView(PersonAPIView):
    """The caller's own account: who the API thinks you are."""

    @extend_schema(responses=AccountOutput, operation_id="me_read")
    def get(self, request: Request) -> Response:
        return Response(AccountOutput(request.user).data)
