"""The staff API for identity resolution: merge two profiles, list merges, undo one.

Staff only (`IsAdminUser`). A merge names people by their opaque subject ids and nothing else:
no names or addresses go in or come out, so the merge history can be listed without a reveal.
The views call the same services as the admin and the automatic merge on a verified email.
"""

import uuid
from typing import Any

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from profiles.gate import Actor
from profiles.models import Merge
from profiles.services import profile_merge_by_staff, profile_merge_undo
from vault.api import Pagination, paginated


class MergeOutput(serializers.Serializer):
    id = serializers.UUIDField()
    survivor = serializers.UUIDField(source="survivor_id", help_text="The person who holds the data now.")
    merged = serializers.UUIDField(source="merged_id", help_text="The person whose data was moved.")
    reason = serializers.CharField(help_text="staff, or verified_email (merged automatically).")
    created_at = serializers.DateTimeField()
    undo_until = serializers.DateTimeField(help_text="The merge can be undone until then.")
    undone_at = serializers.DateTimeField(allow_null=True)


class MergeInput(serializers.Serializer):
    survivor = serializers.UUIDField(help_text="Subject id of the profile that stays.")
    merged = serializers.UUIDField(help_text="Subject id of the profile merged into it.")


class MergeFilter(serializers.Serializer):
    subject = serializers.UUIDField(required=False, help_text="Only merges this person took part in.")


def _merges() -> Any:
    return Merge.objects.order_by("-created_at", "id")


class MergeListView(APIView):
    """Merges of profiles (identity resolution): list them, or merge two profiles."""

    permission_classes = (permissions.IsAdminUser,)

    @extend_schema(
        parameters=[OpenApiParameter("subject", uuid.UUID, description="Only merges this person took part in.")],
        responses=paginated(MergeOutput),
        operation_id="profile_merges_list",
    )
    def get(self, request: Request) -> Response:
        query = MergeFilter(data=request.query_params)
        query.is_valid(raise_exception=True)
        merges = _merges()
        if subject := query.validated_data.get("subject"):
            merges = merges.filter(Q(survivor_id=subject) | Q(merged_id=subject))
        paginator = Pagination()
        page: list[Merge] | None = paginator.paginate_queryset(merges, request, view=self)
        return paginator.get_paginated_response(MergeOutput(page, many=True).data)

    @extend_schema(request=MergeInput, responses={201: MergeOutput}, operation_id="profile_merges_create")
    def post(self, request: Request) -> Response:
        """Moves the merged person's profile, re-encrypted, to the survivor; consent only narrows.
        Undo within the grace period."""
        data = MergeInput(data=request.data)
        data.is_valid(raise_exception=True)
        merge = profile_merge_by_staff(
            survivor_id=data.validated_data["survivor"],
            merged_id=data.validated_data["merged"],
            actor=Actor.staff(request.user.pk),
        )
        return Response(MergeOutput(merge).data, status=status.HTTP_201_CREATED)


class MergeUndoView(APIView):
    permission_classes = (permissions.IsAdminUser,)

    @extend_schema(request=None, responses=MergeOutput, operation_id="profile_merges_undo")
    def post(self, request: Request, merge_id: uuid.UUID) -> Response:
        """Gives the merged person back what the merge moved, within the grace period. Consent
        withdrawn by the merge stays withdrawn."""
        if not Merge.objects.filter(pk=merge_id).exists():
            raise NotFound()
        merge = profile_merge_undo(merge_id=merge_id, actor=Actor.staff(request.user.pk))
        return Response(MergeOutput(merge).data)
