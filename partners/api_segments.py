"""Segments and audience export (`/api/v1/partner/segments/`): a client defines its audiences,
the vault computes their members (a Celery job, through the gate), and the client exports them
page by page. A client only ever sees its own segments: another client's id is a 404."""

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from partners.api import PartnerAPIView
from partners.errors import InvalidExport
from partners.models import Segment
from partners.selectors import segment_of, segments_of
from partners.services import (
    audience_export_plan,
    audience_export_stream,
    segment_create,
    segment_delete,
    segment_refresh,
)
from vault.api import Pagination, paginated

DEFINITION_EXAMPLE = {
    "all": [
        {"field": "country", "op": "in", "values": ["NL", "BE"]},
        {"consent": "email-marketing"},
        {"event": "order", "within_days": 30, "match": {"brand": "Onitsuka"}},
    ]
}
SEGMENT_EXAMPLE = {
    "id": "5b0f3c2e-8d1a-4f4e-9a57-0c1b2d3e4f50",
    "name": "Onitsuka buyers, NL and BE",
    "purpose": "personalization",
    "definition": DEFINITION_EXAMPLE,
    "status": "ready",
    "progress": {"examined": 100000, "total": 100000, "matched": 1240, "percent": 100},
    "count": 1240,
    "computed_at": "2025-06-01T10:00:00Z",
    "expires_at": "2025-06-08T10:00:00Z",
    "error": "",
    "created_at": "2025-06-01T09:59:58Z",
    "updated_at": "2025-06-01T10:00:00Z",
}


class SegmentInput(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    purpose = serializers.SlugField(max_length=64, help_text="One of the client's purposes.")
    definition = serializers.JSONField(
        help_text='`{"all": [...]}` or `{"any": [...]}` of field (eq, in), consent, category and event conditions.'
    )


class ProgressOutput(serializers.Serializer):
    examined = serializers.IntegerField()
    total = serializers.IntegerField()
    matched = serializers.IntegerField()
    percent = serializers.IntegerField()


class SegmentOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    purpose = serializers.CharField()
    definition = serializers.JSONField()
    status = serializers.CharField(help_text="pending, running, ready or failed.")
    progress = serializers.SerializerMethodField()
    count = serializers.IntegerField(allow_null=True, help_text="Members of the last computation.")
    computed_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True, help_text="When the members computed expire.")
    error = serializers.CharField(help_text="The error code of a failed computation.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(ProgressOutput)
    def get_progress(self, segment: Segment) -> dict[str, int]:
        total = max(segment.total, segment.examined)
        done = segment.status == "ready"
        percent = 100 if done else (segment.examined * 100 // total if total else 0)
        return {"examined": segment.examined, "total": total, "matched": segment.matched, "percent": percent}


def _out(segment: Segment) -> dict[str, Any]:
    return dict(SegmentOutput(segment).data)


class SegmentListView(PartnerAPIView):
    """The client's segments; a new one is checked and its first computation enqueued."""

    @extend_schema(
        responses=paginated(SegmentOutput),
        operation_id="partner_segments_list",
        examples=[
            OpenApiExample(
                "Segments",
                value={"count": 1, "next": None, "previous": None, "results": [SEGMENT_EXAMPLE]},
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        page = paginator.paginate_queryset(segments_of(client=self.client), request, view=self)
        return paginator.get_paginated_response([_out(segment) for segment in page or []])

    @extend_schema(
        request=SegmentInput,
        responses={201: SegmentOutput},
        operation_id="partner_segments_create",
        examples=[
            OpenApiExample(
                "Bought Onitsuka in the last 30 days, in NL or BE, and reachable by e-mail",
                value={
                    "name": "Onitsuka buyers, NL and BE",
                    "purpose": "personalization",
                    "definition": DEFINITION_EXAMPLE,
                },
                request_only=True,
            ),
            OpenApiExample(
                "Created", value={**SEGMENT_EXAMPLE, "status": "pending", "count": None}, response_only=True
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        given = SegmentInput(data=request.data)
        given.is_valid(raise_exception=True)
        segment = segment_create(client=self.client, **given.validated_data)
        segment.refresh_from_db()
        return Response(_out(segment), status=status.HTTP_201_CREATED)


class SegmentDetailView(PartnerAPIView):
    """One of the client's segments: its count, status and progress."""

    @extend_schema(
        responses=SegmentOutput,
        operation_id="partner_segments_read",
        examples=[OpenApiExample("Ready", value=SEGMENT_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, segment: Any) -> Response:
        return Response(_out(segment_of(client=self.client, segment_id=segment)))

    @extend_schema(responses={204: None}, operation_id="partner_segments_delete")
    def delete(self, request: Request, segment: Any) -> Response:
        segment_delete(segment=segment_of(client=self.client, segment_id=segment))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentRefreshView(PartnerAPIView):
    """Compute the members anew (the definition is checked again against the client's current
    scope); the members standing stay exportable until the new ones are ready."""

    @extend_schema(
        request=None,
        responses={202: SegmentOutput},
        operation_id="partner_segments_refresh",
        examples=[
            OpenApiExample(
                "Enqueued",
                value={
                    **SEGMENT_EXAMPLE,
                    "status": "pending",
                    "progress": {"examined": 0, "total": 100000, "matched": 0, "percent": 0},
                },
                response_only=True,
            )
        ],
    )
    def post(self, request: Request, segment: Any) -> Response:
        found = segment_refresh(segment=segment_of(client=self.client, segment_id=segment))
        return Response(_out(found), status=status.HTTP_202_ACCEPTED)


class ExportQuery(serializers.Serializer):
    format = serializers.ChoiceField(choices=["csv", "jsonl"], default="csv")
    purpose = serializers.SlugField(max_length=64, required=False, help_text="Default: the segment's purpose.")
    cursor = serializers.CharField(required=False, max_length=500, help_text="The `next` cursor of the last page.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100_000, help_text="People per page.")


_CSV_EXAMPLE = "person,given_name,country\nk3q5c2xv7m4n8p6r2t4w6y8z2a,Margaretha,NL\n"
_JSONL_EXAMPLE = '{"person":"k3q5c2xv7m4n8p6r2t4w6y8z2a","given_name":"Margaretha","country":"NL"}\n'


class SegmentExportView(PartnerAPIView):
    """The segment's members who still consent to the purpose, with the permitted fields, as CSV
    or JSON Lines: one page per request, streamed; the `X-Next-Cursor` header (and a `Link`
    header, rel="next") brings the next page, and is absent on the last. Every page is audited:
    one entry per batch read, naming each person exported in it, and one for the page with its size."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        # `?format=` names the export's format, not a DRF renderer; errors answer in JSON.
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        parameters=[
            ExportQuery,
            OpenApiParameter("fields", str, description="Comma-separated field keys; default: every field permitted."),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV, a header line first."),
            (200, "application/jsonl"): OpenApiResponse(OpenApiTypes.STR, description="One JSON object a line."),
            409: OpenApiResponse(
                description="The segment has no members ready (not computed, failed or expired), or the cursor is "
                "from an earlier computation."
            ),
        },
        operation_id="partner_segments_export",
        examples=[
            OpenApiExample("CSV", value=_CSV_EXAMPLE, response_only=True, media_type="text/csv"),
            OpenApiExample("JSON Lines", value=_JSONL_EXAMPLE, response_only=True, media_type="application/jsonl"),
        ],
    )
    def get(self, request: Request, segment: Any) -> StreamingHttpResponse:
        query = ExportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        given = query.validated_data
        asked = request.query_params.get("fields", "")
        if len(asked) > 2000:
            raise InvalidExport("At most 2000 characters of field keys.", param="fields")
        fields = [key.strip() for key in asked.split(",") if key.strip()]
        page = audience_export_plan(
            client=self.client,
            segment=segment_of(client=self.client, segment_id=segment),
            purpose=given.get("purpose"),
            fields=fields or None,
            format=given["format"],
            cursor=given.get("cursor"),
            limit=given.get("limit"),
        )
        media = "text/csv" if page.format == "csv" else "application/jsonl"
        response = StreamingHttpResponse(audience_export_stream(page=page), content_type=f"{media}; charset=utf-8")
        response["Cache-Control"] = "no-store"
        response["X-Export-Fields"] = ",".join(page.fields)
        if page.next_cursor:
            response["X-Next-Cursor"] = page.next_cursor
            following = request.build_absolute_uri(request.path) + f"?format={page.format}&cursor={page.next_cursor}"
            response["Link"] = f'<{following}>; rel="next"'
        return response
