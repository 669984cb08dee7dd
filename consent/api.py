"""The person's consent API: where they stand, grant, withdraw, history and receipts.

Every view derives from `PersonAPIView`: the subject is always the caller, never a parameter,
so no one can read or change another person's consent through it.
"""

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from consent.errors import UnknownPurpose, UnknownPurposeNotFound
from consent.gpc import request_evidence
from consent.models import ConsentEvent, Method
from consent.receipts import consent_receipt, consent_receipt_jws
from consent.selectors import consent_history, consent_receipt_event, consent_states
from consent.services import consent_grant, consent_parental_request, consent_request, consent_withdraw
from vault.api import Pagination, PersonAPIView, paginated


class PolicyOutput(serializers.Serializer):
    version = serializers.CharField(source="label")
    sha256 = serializers.CharField()
    effective_from = serializers.DateTimeField()
    is_material = serializers.BooleanField()


class PurposeStateOutput(serializers.Serializer):
    purpose = serializers.CharField(help_text="The purpose's slug.")
    name = serializers.CharField()
    description = serializers.CharField()
    legal_basis = serializers.CharField()
    is_sale_or_sharing = serializers.BooleanField()
    requires_double_opt_in = serializers.BooleanField()
    state = serializers.CharField(help_text="granted, withdrawn, refused, expired, pending, not_given, ...")
    is_granted = serializers.BooleanField()
    current_policy = PolicyOutput(allow_null=True)
    decided_policy = serializers.CharField(allow_null=True)
    changed_at = serializers.DateTimeField(allow_null=True)


class EventOutput(serializers.Serializer):
    id = serializers.UUIDField(help_text="Also the id of the event's consent receipt (not for requests).")
    purpose = serializers.CharField(source="purpose.slug")
    event_type = serializers.CharField()
    policy_version = serializers.CharField(source="policy_version.label")
    method = serializers.CharField()
    occurred_at = serializers.DateTimeField()


class ChoiceInput(serializers.Serializer):
    policy_version = serializers.CharField(
        required=False, max_length=32, help_text="The policy version shown to the person; default: the one in force."
    )


class WithdrawInput(ChoiceInput):
    pass


class GrantInput(ChoiceInput):
    birth_date = serializers.DateField(
        required=False,
        help_text=(
            "Only for the age gate, never stored: where the profile holds a birth date, it must be that one "
            "(a different one is refused, birth_date_mismatch); between 1900 and today."
        ),
    )


class RequestInput(serializers.Serializer):
    birth_date = serializers.DateField(
        required=False,
        help_text=(
            "Only for the age gate, never stored: where the profile holds a birth date, it must be that one "
            "(a different one is refused, birth_date_mismatch); between 1900 and today."
        ),
    )


class ParentalRequestInput(serializers.Serializer):
    parent_email = serializers.EmailField(help_text="Where the parent's link goes; not stored.")
    birth_date = serializers.DateField(
        required=False,
        help_text="As for a grant: compared with the profile's birth date, never stored.",
    )


class ReceiptOutput(serializers.Serializer):
    receipt = serializers.JSONField(help_text="Kantara Consent Receipt v1.1.")
    jws = serializers.CharField(help_text="The same receipt signed (EdDSA); keys at /.well-known/jwks.json.")


class ConsentListView(PersonAPIView):
    @extend_schema(responses=PurposeStateOutput(many=True), operation_id="consent_list")
    def get(self, request: Request) -> Response:
        return Response(PurposeStateOutput(consent_states(subject_id=self.subject), many=True).data)


class _ChoiceView(PersonAPIView):
    """POST records one choice of the caller; subclasses say which input and service."""

    input_class: type[serializers.Serializer]

    def _choose(self, request: Request, purpose: str, data: dict[str, Any]) -> ConsentEvent:
        raise NotImplementedError

    def post(self, request: Request, purpose: str) -> Response:
        data = self.input_class(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            event = self._choose(request, purpose, dict(data.validated_data))
        except UnknownPurpose as exc:
            raise UnknownPurposeNotFound() from exc
        return Response(EventOutput(event).data, status=status.HTTP_201_CREATED)


class GrantView(_ChoiceView):
    input_class = GrantInput

    @extend_schema(request=GrantInput, responses={201: EventOutput})
    def post(self, request: Request, purpose: str) -> Response:
        return super().post(request, purpose)

    def _choose(self, request: Request, purpose: str, data: dict[str, Any]) -> ConsentEvent:
        return consent_grant(
            subject_id=self.subject,
            purpose=purpose,
            policy_version=data.get("policy_version"),
            method=Method.API,
            evidence=request_evidence(request),
            gpc=getattr(request, "gpc", False),  # no override through the API: only in the portal
            birth_date=data.get("birth_date"),
        )


class WithdrawView(_ChoiceView):
    input_class = WithdrawInput

    @extend_schema(request=WithdrawInput, responses={201: EventOutput})
    def post(self, request: Request, purpose: str) -> Response:
        return super().post(request, purpose)

    def _choose(self, request: Request, purpose: str, data: dict[str, Any]) -> ConsentEvent:
        return consent_withdraw(
            subject_id=self.subject,
            purpose=purpose,
            policy_version=data.get("policy_version"),
            method=Method.API,
            evidence=request_evidence(request),
        )


class RequestView(_ChoiceView):
    """Double opt-in: the purpose becomes pending and a confirmation link is e-mailed."""

    input_class = RequestInput
    throttle_classes = (*PersonAPIView.throttle_classes, ScopedRateThrottle)
    throttle_scope = "consent_mail"

    @extend_schema(request=RequestInput, responses={201: EventOutput})
    def post(self, request: Request, purpose: str) -> Response:
        return super().post(request, purpose)

    def _choose(self, request: Request, purpose: str, data: dict[str, Any]) -> ConsentEvent:
        return consent_request(
            subject_id=self.subject,
            purpose=purpose,
            evidence=request_evidence(request),
            birth_date=data.get("birth_date"),
            gpc=getattr(request, "gpc", False),
        )


class ParentalRequestView(_ChoiceView):
    """Below the age of digital consent: a parent or guardian is asked by e-mail."""

    input_class = ParentalRequestInput
    throttle_classes = (*PersonAPIView.throttle_classes, ScopedRateThrottle)
    throttle_scope = "consent_mail"

    @extend_schema(request=ParentalRequestInput, responses={201: EventOutput})
    def post(self, request: Request, purpose: str) -> Response:
        return super().post(request, purpose)

    def _choose(self, request: Request, purpose: str, data: dict[str, Any]) -> ConsentEvent:
        return consent_parental_request(
            subject_id=self.subject,
            purpose=purpose,
            parent_email=data["parent_email"],
            birth_date=data.get("birth_date"),
            evidence=request_evidence(request),
            gpc=getattr(request, "gpc", False),
        )


class HistoryView(PersonAPIView):
    @extend_schema(responses=paginated(EventOutput), operation_id="consent_history")
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        page = paginator.paginate_queryset(consent_history(subject_id=self.subject), request, view=self)
        return paginator.get_paginated_response(EventOutput(page, many=True).data)


class ReceiptView(PersonAPIView):
    @extend_schema(
        responses={200: ReceiptOutput, 404: OpenApiResponse(description="No such receipt of yours.")},
        operation_id="consent_receipt",
    )
    def get(self, request: Request, event_id: uuid.UUID) -> Response:
        event = consent_receipt_event(subject_id=self.subject, event_id=event_id)
        if event is None:
            raise NotFound()
        return Response({"receipt": consent_receipt(event), "jws": consent_receipt_jws(event)})
