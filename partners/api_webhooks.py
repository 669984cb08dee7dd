"""The partners API's real-time triggers: a client posts a catalog event, and the vault enqueues
`notification.requested` webhooks to the push clients for the people whose preferences match and
who consented (partners/services/triggers.py). The caller learns the trigger's id, never whom
it matched or how many."""

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from partners.api import PartnerAPIView
from partners.services import trigger_fire, webhook_deliveries_dispatch
from partners.services.triggers import MATCH_PURPOSE


class CatalogTriggerInput(serializers.Serializer):
    brand = serializers.CharField(max_length=100, help_text="The brand now available (matched case-insensitively).")
    size = serializers.CharField(max_length=8, help_text="A clothing size (S, M...) or an EU shoe size (42).")
    item = serializers.CharField(
        max_length=200, required=False, default="", allow_blank=True, help_text="What is available, for the message."
    )


class CatalogTriggerOutput(serializers.Serializer):
    trigger = serializers.UUIDField(help_text="Named in each notification.requested webhook it causes.")


class CatalogTriggerView(PartnerAPIView):
    """A catalog event ("brand X is now available in size M"). Needs the `personalization`
    purpose: matching uses the preferences people gave for it."""

    @extend_schema(
        request=CatalogTriggerInput,
        responses={202: CatalogTriggerOutput},
        operation_id="partner_trigger_catalog",
        examples=[
            OpenApiExample(
                "Back in stock",
                value={"brand": "Veja", "size": "M", "item": "Veja V-10 in white"},
                request_only=True,
            ),
            OpenApiExample("Accepted", value={"trigger": "2b4f8c1e-7d3a-4e5b-9c6d-0a1b2c3d4e5f"}, response_only=True),
        ],
    )
    def post(self, request: Request) -> Response:
        self.purpose_check(MATCH_PURPOSE)
        data = CatalogTriggerInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = trigger_fire(client=self.client, **data.validated_data)
        webhook_deliveries_dispatch(result.deliveries)
        return Response({"trigger": result.trigger}, status=status.HTTP_202_ACCEPTED)
