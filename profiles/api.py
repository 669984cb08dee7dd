"""The profile API: the person's own profile, documents and events, and the staff schema API.

The person's views derive from `PersonAPIView` (the subject is the caller, never a parameter)
and read through the access gate with the `data-subject-rights` purpose, so every read of one's
own data is checked and audited like any other.
"""

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from profiles.errors import InvalidDefinition, UnknownField, UnknownFieldNotFound
from profiles.gate import RIGHTS_PURPOSE, Actor, profile_records_count, profile_records_read, profile_write
from profiles.models import Category, FieldDefinition, FieldType, RecordKind, Source
from profiles.selectors import person_fields, profile_listing, unscoped_field_definitions
from profiles.services import field_definition_create, field_definition_deprecate, field_definition_update
from vault.api import Pagination, PersonAPIView, paginated


# --- The person's profile ---------------------------------------------------------------------
class ProfileFieldOutput(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like a DRF attribute
    help_text = serializers.CharField()  # type: ignore[assignment]  # a field named like a DRF attribute
    type = serializers.CharField(source="field_type")
    category = serializers.CharField()
    choices = serializers.ListField(child=serializers.CharField())
    can_edit = serializers.BooleanField()
    value = serializers.JSONField(allow_null=True, help_text="null when no value is held.")
    source = serializers.CharField(allow_null=True, help_text="Where the value came from.")  # type: ignore[assignment]  # a field named like a DRF attribute
    source_name = serializers.CharField(allow_null=True, help_text="Which provider, partner or import.")
    collected_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True, help_text="When the retention period ends.")


class ProfileOutput(serializers.Serializer):
    fields = ProfileFieldOutput(many=True)  # type: ignore[assignment]  # the output key is "fields"


class ProfileInput(serializers.Serializer):
    values = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        allow_empty=False,
        help_text="Field key to new value; null removes the value.",
    )


class MyProfileView(PersonAPIView):
    """Your profile: every value held about you, where it came from and when it expires."""

    @extend_schema(responses=ProfileOutput, operation_id="my_profile_read")
    def get(self, request: Request) -> Response:
        return Response(ProfileOutput({"fields": profile_listing(subject_id=self.subject)}).data)

    @extend_schema(request=ProfileInput, responses=ProfileOutput, operation_id="my_profile_rectify")
    def patch(self, request: Request) -> Response:
        data = ProfileInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data["values"]
        visible = {d.key for d in person_fields()}
        for key in values:
            if key not in visible:  # fields hidden from the person are not revealed to exist
                raise UnknownField(param=key)
        subject = self.subject
        profile_write(
            subject_id=subject,
            values=values,
            source=Source.SELF_SERVICE,
            purpose=RIGHTS_PURPOSE,
            actor=Actor.person(subject),
        )
        return Response(ProfileOutput({"fields": profile_listing(subject_id=subject)}).data)


class RecordOutput(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    body = serializers.JSONField()
    source = serializers.CharField()  # type: ignore[assignment]  # a field named like a DRF attribute
    source_name = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


class _MyRecordsView(PersonAPIView):
    shape = ""

    def get(self, request: Request) -> Response:
        records = _GatedRecords(self.subject, self.shape, request.query_params.getlist("kind") or None)
        paginator = Pagination()
        page: list[Any] | None = paginator.paginate_queryset(records, request, view=self)  # type: ignore[arg-type]
        return paginator.get_paginated_response(RecordOutput(page, many=True).data)


class _GatedRecords:
    """The person's records as the paginator sees them: counted without decrypting, and only
    the page asked for read (and audited) through the gate."""

    def __init__(self, subject: uuid.UUID, shape: str, kinds: list[str] | None):
        self.subject, self.shape, self.kinds = subject, shape, kinds

    def count(self) -> int:
        return profile_records_count(
            subject_id=self.subject, purpose=RIGHTS_PURPOSE, shape=self.shape, kinds=self.kinds
        )

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, page: slice) -> list[Any]:
        return profile_records_read(
            subject_id=self.subject,
            purpose=RIGHTS_PURPOSE,
            actor=Actor.person(self.subject),
            shape=self.shape,
            kinds=self.kinds,
            offset=page.start or 0,
            limit=(page.stop or 0) - (page.start or 0),
        )


_KIND_FILTER = OpenApiParameter("kind", str, many=True, description="Only these kinds (repeatable).")


class MyDocumentsView(_MyRecordsView):
    """Documents held about you, such as the profile a social provider shared."""

    shape = RecordKind.Shape.DOCUMENT

    @extend_schema(parameters=[_KIND_FILTER], responses=paginated(RecordOutput), operation_id="my_documents")
    def get(self, request: Request) -> Response:
        return super().get(request)


class MyEventsView(_MyRecordsView):
    """Your orders, returns, loyalty points and activity, newest first."""

    shape = RecordKind.Shape.EVENT

    @extend_schema(parameters=[_KIND_FILTER], responses=paginated(RecordOutput), operation_id="my_events")
    def get(self, request: Request) -> Response:
        return super().get(request)


# --- The schema, for staff ----------------------------------------------------------------------
class DefinitionOutput(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like a DRF attribute
    help_text = serializers.CharField()  # type: ignore[assignment]  # a field named like a DRF attribute
    type = serializers.CharField(source="field_type")
    choices = serializers.ListField(child=serializers.CharField())
    category = serializers.CharField()
    is_special_category = serializers.BooleanField()
    purposes = serializers.SerializerMethodField()
    searchable = serializers.BooleanField()
    index_bits = serializers.IntegerField()
    retention_days = serializers.IntegerField()
    allowed_sources = serializers.ListField(child=serializers.CharField())
    max_length = serializers.IntegerField(allow_null=True)
    person_can_view = serializers.BooleanField()
    person_can_edit = serializers.BooleanField()
    version = serializers.IntegerField()
    deprecated_at = serializers.DateTimeField(allow_null=True)

    def get_purposes(self, definition: FieldDefinition) -> list[str]:
        return sorted(p.slug for p in definition.purposes.all())


class DefinitionCreateInput(serializers.Serializer):
    """A new field: its key and type are fixed once made."""

    key = serializers.RegexField(r"^[a-z][a-z0-9_]{0,63}$", help_text="Lower case, digits and _; fixed once made.")
    label = serializers.CharField(max_length=120)  # type: ignore[assignment]  # a field named like a DRF attribute
    help_text = serializers.CharField(max_length=300, required=False, allow_blank=True)  # type: ignore[assignment]  # a field named like a DRF attribute
    type = serializers.ChoiceField(FieldType.choices, source="field_type", help_text="Fixed once made.")
    choices = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=500)
    category = serializers.ChoiceField(Category.choices)
    is_special_category = serializers.BooleanField(required=False)
    purposes = serializers.ListField(child=serializers.SlugField(), required=False)
    searchable = serializers.BooleanField(required=False)
    index_bits = serializers.IntegerField(required=False, min_value=8, max_value=256)
    retention_days = serializers.IntegerField(min_value=1, max_value=36500)
    allowed_sources = serializers.ListField(child=serializers.ChoiceField(Source.choices), allow_empty=False)
    max_length = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    person_can_view = serializers.BooleanField(required=False)
    person_can_edit = serializers.BooleanField(required=False)


class DefinitionUpdateInput(DefinitionCreateInput):
    """A change to a field (PATCH): every attribute optional; the key, if sent, must be the same."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, partial=True, **kwargs)


class FieldDefinitionListView(APIView):
    """The profile schema: list and define fields (staff only; every change is versioned)."""

    permission_classes = (permissions.IsAdminUser,)

    @extend_schema(responses=DefinitionOutput(many=True), operation_id="profile_fields_list")
    def get(self, request: Request) -> Response:
        return Response(DefinitionOutput(unscoped_field_definitions(), many=True).data)

    @extend_schema(
        request=DefinitionCreateInput, responses={201: DefinitionOutput}, operation_id="profile_fields_create"
    )
    def post(self, request: Request) -> Response:
        data = DefinitionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        spec = dict(data.validated_data)
        definition = field_definition_create(
            key=spec.pop("key"), purposes=spec.pop("purposes", []), actor=Actor.staff(request.user.pk), **spec
        )
        return Response(
            DefinitionOutput(unscoped_field_definitions().get(pk=definition.pk)).data, status=status.HTTP_201_CREATED
        )


class FieldDefinitionView(APIView):
    permission_classes = (permissions.IsAdminUser,)

    def _get(self, key: str) -> FieldDefinition:
        definition = unscoped_field_definitions().filter(key=key).first()
        if definition is None:
            raise UnknownFieldNotFound(param="key")
        return definition

    @extend_schema(responses=DefinitionOutput, operation_id="profile_fields_read")
    def get(self, request: Request, key: str) -> Response:
        return Response(DefinitionOutput(self._get(key)).data)

    @extend_schema(request=DefinitionUpdateInput, responses=DefinitionOutput, operation_id="profile_fields_update")
    def patch(self, request: Request, key: str) -> Response:
        data = DefinitionUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if changes.pop("key", key) != key:
            raise InvalidDefinition("A field's key cannot change: define a new field.", param="key")
        field_definition_update(
            key=key, purposes=changes.pop("purposes", None), actor=Actor.staff(request.user.pk), **changes
        )
        return Response(DefinitionOutput(self._get(key)).data)

    # 200 with the deprecated definition (drf-spectacular documents a DELETE as 204 unless told).
    @extend_schema(responses={200: DefinitionOutput}, operation_id="profile_fields_deprecate")
    def delete(self, request: Request, key: str) -> Response:
        """Deprecates the field: it takes no new values; stored values live out their retention."""
        field_definition_deprecate(key=key, actor=Actor.staff(request.user.pk))
        return Response(DefinitionOutput(self._get(key)).data)
