"""Event ingestion (`POST /api/v1/partner/events/`): a partner posts one event or a batch about
the people it knows by pairwise id. The rules are the service's (partners/services/events.py);
this view reads the request, passes the `Idempotency-Key` header and answers."""

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from partners.api import PartnerAPIView
from partners.errors import IdempotencyKeyReused
from partners.services import partner_events_ingest
from vault.envelope import error_body, error_item


class EventInput(serializers.Serializer):
    """For the schema only: the service reads events itself, strictly, item by item."""

    person = serializers.CharField(help_text="The person's id for this client.")
    kind = serializers.CharField(help_text="An event kind the client may post: order, product_view, ...")
    occurred_at = serializers.DateTimeField(help_text="ISO 8601 with its offset; not in the future.")
    body = serializers.DictField(help_text="The event itself, a JSON object (bounded in size and depth).")


class EventBatchInput(serializers.Serializer):
    events = EventInput(many=True, help_text="At most PARTNERS_EVENTS_MAX_BATCH (1,000) events.")


class RefusalOutput(serializers.Serializer):
    index = serializers.IntegerField(help_text="The item's position in the batch (0 for one event).")
    status = serializers.IntegerField(help_text="400 malformed, 403 kind not granted, 404 unknown person.")
    code = serializers.CharField()
    message = serializers.CharField()
    param = serializers.CharField(allow_null=True, help_text="The part of the item blamed.")


class IngestionOutput(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Events stored.")
    refused = serializers.IntegerField(help_text="Events refused (nothing of them stored).")
    refusals = RefusalOutput(many=True, help_text="Why, by item; a malformed item may have several entries.")


_EVENT = {
    "person": "k3q5c2xv7m4n8p6r2t4w6y8z2a",
    "kind": "order",
    "occurred_at": "2026-05-04T10:15:00+02:00",
    "body": {"order": "A-000123", "total": "59.90", "currency": "EUR", "items": [{"sku": "SKU-00042", "qty": 1}]},
}


class EventIngestView(PartnerAPIView):
    """Transactional and behavioral events about people the client knows, one or a batch."""

    @extend_schema(
        operation_id="partner_events_ingest",
        request=PolymorphicProxySerializer(
            component_name="EventIngestion",
            serializers=[EventInput, EventBatchInput],
            resource_type_field_name=None,
        ),
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description="Makes a retry safe: the same key and body get the same answer, stored once "
                "(kept PARTNERS_IDEMPOTENCY_HOURS). The same key with another body: 422.",
            )
        ],
        responses={
            200: OpenApiResponse(
                IngestionOutput, description="A batch: what was stored and what was refused, by item."
            ),
            201: OpenApiResponse(IngestionOutput, description="One event, stored."),
            422: OpenApiResponse(
                response={"$ref": "#/components/schemas/Error"},  # the envelope (vault/schema.py)
                description="This Idempotency-Key was used for another request body.",
            ),
        },
        examples=[
            OpenApiExample("One event", value=_EVENT, request_only=True),
            OpenApiExample(
                "A batch",
                value={"events": [_EVENT, {**_EVENT, "kind": "product_view", "body": {"sku": "SKU-00042"}}]},
                request_only=True,
            ),
            OpenApiExample(
                "A batch with one refusal",
                value={
                    "accepted": 1,
                    "refused": 1,
                    "refusals": [
                        {
                            "index": 1,
                            "status": 404,
                            "code": "unknown_person",
                            "message": "No such person.",
                            "param": "person",
                        }
                    ],
                },
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "Same key, another body",
                value={
                    "status": 422,
                    "errors": [
                        {
                            "code": "idempotency_key_reused",
                            "message": "This Idempotency-Key was used for a different request.",
                            "param": "Idempotency-Key",
                        }
                    ],
                },
                response_only=True,
                status_codes=["422"],
            ),
            OpenApiExample(
                "One event stored",
                value={"accepted": 1, "refused": 0, "refusals": []},
                response_only=True,
                status_codes=["201"],
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        raw = request.body  # before the parser reads the stream; the body's hash keys replays
        try:
            answer = partner_events_ingest(
                client=self.client,
                payload=request.data,
                raw_body=raw,
                idempotency_key=request.headers.get("Idempotency-Key"),
            )
        except IdempotencyKeyReused as error:
            # 422 Unprocessable Content, as draft-ietf-httpapi-idempotency-key-header says.
            return Response(error_body(422, [error_item(error.code, error.message, error.param)]), status=422)
        headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
        return Response(answer.body, status=answer.status, headers=headers)
