"""The rights API. For the person (`/api/v1/me/requests/`, their restriction and CCPA opt-outs):
every view derives from `PersonAPIView`, so the subject is always the caller. For staff
(`/api/v1/requests/`): the queue and its actions, for staff holding `rights.handle_rightsrequest`.

Requests that disclose, change or destroy data (access, export, erasure, rectification) and the
export download need a recent re-authentication (with the second factor when the person has
one): through allauth's headless API, `POST /_allauth/browser/v1/auth/reauthenticate` (or
`.../auth/2fa/reauthenticate`), then retry within the re-authentication window.
"""

import uuid
from typing import Any

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consent.gpc import request_evidence
from profiles.gate import Actor
from profiles.selectors import profile_is_restricted
from rights.errors import ExportNotReady, InvalidTransition, RequestNotFound
from rights.models import Channel, ExportBundle, Kind, RightsRequest, Status, Verification
from rights.selectors import (
    queue_flags,
    rights_request_of,
    rights_requests_of,
    unscoped_rights_queue,
    unscoped_rights_request,
)
from rights.services import (
    export_download,
    restriction_lift,
    rights_legal_hold_lift,
    rights_legal_hold_set,
    rights_request_cancel,
    rights_request_complete,
    rights_request_extend,
    rights_request_reject,
    rights_request_submit,
    rights_request_verify,
    sale_sharing_opt_out,
    sensitive_use_limit,
)
from rights.verification import api_session, proof_of
from vault.api import Pagination, PersonAPIView, paginated

PROVEN_KINDS = (Kind.ACCESS, Kind.EXPORT, Kind.ERASURE, Kind.RECTIFICATION)


class ExportOutput(serializers.Serializer):
    id = serializers.UUIDField()
    size = serializers.IntegerField(help_text="Bytes of the zip.")
    sha256 = serializers.CharField(help_text="SHA-256 of the zip, to check the download.")
    expires_at = serializers.DateTimeField(help_text="The bundle is deleted then.")
    download = serializers.SerializerMethodField(help_text="Where to download it (re-authentication required).")

    def get_download(self, bundle: ExportBundle) -> str:
        return reverse("v1:my-request-export", kwargs={"request_id": bundle.request_id})


class RightsRequestOutput(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=Kind.choices)
    status = serializers.ChoiceField(choices=Status.choices)
    channel = serializers.ChoiceField(choices=Channel.choices)
    received_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField(help_text="One month after receipt.")
    extended_due_at = serializers.DateTimeField(allow_null=True, help_text="Set when the deadline was extended.")
    extension_reason = serializers.CharField(help_text="Why the deadline was extended.")
    rejection_reason = serializers.CharField(help_text="Why the request was rejected.")
    verification = serializers.CharField(
        help_text="How the person was verified: reauthentication, reauthentication_mfa, session or staff; "
        "empty until verified."
    )
    verified_at = serializers.DateTimeField(allow_null=True)
    grace_ends_at = serializers.DateTimeField(allow_null=True, help_text="Erasure: it runs then, unless cancelled.")
    legal_hold = serializers.BooleanField(help_text="Erasure: paused by staff.")
    legal_hold_reason = serializers.CharField()
    purposes = serializers.ListField(child=serializers.CharField(), help_text="Objection: the purposes objected to.")
    progress = serializers.IntegerField(help_text="0 to 100, while an export is being built.")
    completed_at = serializers.DateTimeField(allow_null=True)
    export = serializers.SerializerMethodField()

    @extend_schema_field(ExportOutput(allow_null=True))
    def get_export(self, request: RightsRequest) -> dict[str, Any] | None:
        if request.kind not in (Kind.ACCESS, Kind.EXPORT):
            return None
        try:
            bundle = request.bundle  # selected with the request: no query per row
        except ExportBundle.DoesNotExist:
            return None
        return dict(ExportOutput(bundle).data)


class StaffRightsRequestOutput(RightsRequestOutput):
    subject = serializers.UUIDField(source="subject_id", help_text="The person's opaque subject id.")
    overdue = serializers.SerializerMethodField()
    due_soon = serializers.SerializerMethodField(help_text="Due within seven days.")

    def get_overdue(self, request: RightsRequest) -> bool:
        return queue_flags(request).overdue

    def get_due_soon(self, request: RightsRequest) -> bool:
        return queue_flags(request).due_soon


class RightsRequestInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Kind.choices)
    confirm = serializers.BooleanField(
        default=False, help_text="Erasure: true to confirm it (it cannot be undone once it runs)."
    )
    values = serializers.DictField(
        required=False, help_text="Rectification: {field key: corrected value} for fields you cannot edit yourself."
    )
    purposes = serializers.ListField(
        child=serializers.SlugField(max_length=64),
        required=False,
        max_length=100,
        help_text="Objection: slugs of legitimate-interest purposes.",
    )


class StaffRightsRequestInput(RightsRequestInput):
    subject = serializers.UUIDField(help_text="The person's subject id.")
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="How staff verified the person (sealed); verifies the request at once.",
    )


_EXAMPLES = [
    OpenApiExample("Export", value={"kind": "export"}, request_only=True),
    OpenApiExample("Erasure", value={"kind": "erasure", "confirm": True}, request_only=True),
    OpenApiExample("Objection", value={"kind": "objection", "purposes": ["product-analytics"]}, request_only=True),
    OpenApiExample(
        "Rectification", value={"kind": "rectification", "values": {"birth_date": "1990-04-01"}}, request_only=True
    ),
]
_REAUTH_NOTE = (
    "Needs a recent re-authentication through allauth (with the second factor when the person has one); "
    "until then 403 with code reauthentication_required or mfa_required."
)


def _submit(
    request: Request, subject_id: uuid.UUID, data: dict[str, Any], channel: str, actor: Actor, verification: str
) -> RightsRequest:
    return rights_request_submit(
        subject_id=subject_id,
        kind=data["kind"],
        channel=channel,
        verification=verification,
        actor=actor,
        confirm=data["confirm"],
        values=data.get("values"),
        purposes=data.get("purposes"),
        evidence=request_evidence(request._request),
    )


class MyRequestsView(PersonAPIView):
    """Your data-subject requests: ask for access, an export, erasure, rectification, restriction
    or objection, and follow each one."""

    @extend_schema(responses=paginated(RightsRequestOutput), operation_id="my_requests_list")
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        page = paginator.paginate_queryset(rights_requests_of(subject_id=self.subject), request, view=self)
        return paginator.get_paginated_response(RightsRequestOutput(page, many=True).data)

    @extend_schema(
        request=RightsRequestInput,
        examples=_EXAMPLES,
        responses={201: RightsRequestOutput},
        description=_REAUTH_NOTE,
        operation_id="my_requests_create",
    )
    def post(self, request: Request) -> Response:
        data = RightsRequestInput(data=request.data)
        data.is_valid(raise_exception=True)
        verification = Verification.SESSION
        if data.validated_data["kind"] in PROVEN_KINDS:
            verification = Verification(proof_of(user=request.user, session=api_session(request)))
        made = _submit(
            request, self.subject, data.validated_data, Channel.API, Actor.person(self.subject), verification
        )
        made.refresh_from_db()
        return Response(RightsRequestOutput(made).data, status=status.HTTP_201_CREATED)


class MyRequestView(PersonAPIView):
    @extend_schema(responses=RightsRequestOutput, operation_id="my_requests_retrieve")
    def get(self, request: Request, request_id: uuid.UUID) -> Response:
        found = rights_request_of(subject_id=self.subject, request_id=request_id)
        if found is None:
            raise RequestNotFound()
        return Response(RightsRequestOutput(found).data)


class MyRequestCancelView(PersonAPIView):
    @extend_schema(request=None, responses=RightsRequestOutput, operation_id="my_requests_cancel")
    def post(self, request: Request, request_id: uuid.UUID) -> Response:
        """Cancel an open request that has not started; an erasure, until its grace period ends."""
        cancelled = rights_request_cancel(subject_id=self.subject, request_id=request_id)
        return Response(RightsRequestOutput(cancelled).data)


class MyRequestExportView(PersonAPIView):
    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(description="The zip (README.html, JSON and CSV files)."),
        },
        description=_REAUTH_NOTE,
        operation_id="my_requests_export_download",
    )
    def get(self, request: Request, request_id: uuid.UUID) -> HttpResponse:
        """Download the export an access or export request produced, until it expires."""
        found = rights_request_of(subject_id=self.subject, request_id=request_id)
        bundle = None if found is None else ExportBundle.objects.filter(request=found).first()
        if found is None:
            raise RequestNotFound()
        if bundle is None:
            raise ExportNotReady()
        proof_of(user=request.user, session=api_session(request))
        content, bundle = export_download(
            subject_id=self.subject, bundle_id=bundle.pk, actor=Actor.person(self.subject)
        )
        return zip_response(content, bundle)


def zip_response(content: bytes, bundle: ExportBundle) -> HttpResponse:
    response = HttpResponse(content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="my-data-{bundle.created_at:%Y-%m-%d}.zip"'
    response["Cache-Control"] = "no-store"
    return response


class RestrictionOutput(serializers.Serializer):
    restricted = serializers.BooleanField(help_text="Processing is restricted to your rights and legal obligations.")


class MyRestrictionView(PersonAPIView):
    """Whether processing of your data is restricted (GDPR Art. 18). Restrict it with a request
    of kind `restriction`; lift it here."""

    @extend_schema(responses=RestrictionOutput, operation_id="my_restriction_retrieve")
    def get(self, request: Request) -> Response:
        return Response({"restricted": profile_is_restricted(subject_id=self.subject)})

    @extend_schema(request=None, responses={200: RestrictionOutput}, operation_id="my_restriction_lift")
    def delete(self, request: Request) -> Response:
        restriction_lift(subject_id=self.subject, actor=Actor.person(self.subject))
        return Response({"restricted": False})


class OptOutOutput(serializers.Serializer):
    recorded = serializers.ListField(
        child=serializers.CharField(), help_text="Purposes withdrawn or refused now, each with a consent receipt."
    )


class MySaleSharingOptOutView(PersonAPIView):
    @extend_schema(request=None, responses=OptOutOutput, operation_id="my_opt_out_sale_sharing")
    def post(self, request: Request) -> Response:
        """CCPA "Do Not Sell or Share My Personal Information": every sale and sharing purpose, in one step."""
        evidence = request_evidence(request._request)
        return Response(
            {"recorded": sale_sharing_opt_out(subject_id=self.subject, channel=Channel.API, evidence=evidence)}
        )


class MySensitiveLimitView(PersonAPIView):
    @extend_schema(request=None, responses=OptOutOutput, operation_id="my_opt_out_sensitive")
    def post(self, request: Request) -> Response:
        """CCPA "Limit the Use of My Sensitive Personal Information": every purpose special-category fields serve."""
        evidence = request_evidence(request._request)
        return Response(
            {"recorded": sensitive_use_limit(subject_id=self.subject, channel=Channel.API, evidence=evidence)}
        )


# --- Staff -------------------------------------------------------------------------------------
class HandlesRequests(permissions.BasePermission):
    """Staff holding the permission to act on data-subject requests."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff and user.has_perm("rights.handle_rightsrequest"))


class StaffAPIView(APIView):
    permission_classes = (permissions.IsAuthenticated, HandlesRequests)

    def found(self, request_id: uuid.UUID) -> RightsRequest:
        found = unscoped_rights_request(request_id=request_id)
        if found is None:
            raise RequestNotFound()
        return found

    def actor(self) -> Actor:
        return Actor.staff(self.request.user.pk)


class QueueFilter(serializers.Serializer):
    include_closed = serializers.BooleanField(default=False, help_text="Closed requests too.")
    kind = serializers.ChoiceField(choices=Kind.choices, required=False)


class RequestQueueView(StaffAPIView):
    """The queue of data-subject requests, the earliest deadline first, overdue and due-soon flagged."""

    @extend_schema(
        parameters=[QueueFilter], responses=paginated(StaffRightsRequestOutput), operation_id="requests_list"
    )
    def get(self, request: Request) -> Response:
        query = QueueFilter(data=request.query_params)
        query.is_valid(raise_exception=True)
        requests = unscoped_rights_queue(include_closed=query.validated_data["include_closed"])
        if kind := query.validated_data.get("kind"):
            requests = requests.filter(kind=kind)
        paginator = Pagination()
        page = paginator.paginate_queryset(requests, request, view=self)
        return paginator.get_paginated_response(StaffRightsRequestOutput(page, many=True).data)

    @extend_schema(
        request=StaffRightsRequestInput,
        responses={201: StaffRightsRequestOutput},
        operation_id="requests_create",
        examples=[
            OpenApiExample(
                "Access request received by letter, verified",
                value={
                    "subject": "0b5c6f6e-6a4e-4f59-9b1c-2b7f3c1d9e10",
                    "kind": "access",
                    "note": "Signed letter; ID document checked against the account",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Erasure asked by phone, to verify later",
                value={"subject": "0b5c6f6e-6a4e-4f59-9b1c-2b7f3c1d9e10", "kind": "erasure", "confirm": True},
                request_only=True,
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        """Record a request received offline (mail, phone, letter). With a note saying how the
        person was verified it is verified at once; else it waits for `verify`."""
        data = StaffRightsRequestInput(data=request.data)
        data.is_valid(raise_exception=True)
        note = data.validated_data.get("note", "").strip()
        made = _submit(request, data.validated_data["subject"], data.validated_data, Channel.OFFLINE, self.actor(), "")
        if note and made.status == Status.RECEIVED:
            made = rights_request_verify(request_id=made.pk, actor=self.actor(), note=note)
        made.refresh_from_db()
        return Response(StaffRightsRequestOutput(made).data, status=status.HTTP_201_CREATED)


class RequestDetailView(StaffAPIView):
    @extend_schema(responses=StaffRightsRequestOutput, operation_id="requests_retrieve")
    def get(self, request: Request, request_id: uuid.UUID) -> Response:
        return Response(StaffRightsRequestOutput(self.found(request_id)).data)


class NoteInput(serializers.Serializer):
    note = serializers.CharField(max_length=2000, help_text="How the person was verified (sealed with the request).")


class ExtendInput(serializers.Serializer):
    months = serializers.IntegerField(min_value=1, max_value=2, help_text="1 or 2 (two months in all at most).")
    reason = serializers.CharField(max_length=2000, help_text="Shown to the person. No personal data.")


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Shown to the person. No personal data.")


def _lift(request_id: uuid.UUID, actor: Actor, data: dict[str, Any]) -> None:
    found = unscoped_rights_request(request_id=request_id)
    if found is None or found.kind != Kind.RESTRICTION:
        raise InvalidTransition("Only a restriction can be lifted.")
    restriction_lift(subject_id=found.subject_id, actor=actor)


# An example body for the steps that take one.
_STEP_EXAMPLES = {
    "verify": {"note": "Called back on the phone number on file"},
    "extend": {"months": 2, "reason": "Your request covers several systems; we need more time to collect everything."},
    "reject": {"reason": "We could not confirm your identity from the details given."},
    "hold": {"reason": "A legal claim about your orders is pending; we must keep the data until it is settled."},
}

# Each staff step: its input, what it does, and what its documentation says.
_STEPS: dict[str, tuple[type[serializers.Serializer] | None, Any, str]] = {
    "verify": (
        NoteInput,
        lambda rid, actor, data: rights_request_verify(request_id=rid, actor=actor, note=data["note"]),
        "Staff verified the person behind a request received offline; the request proceeds.",
    ),
    "extend": (
        ExtendInput,
        lambda rid, actor, data: rights_request_extend(
            request_id=rid, actor=actor, months=data["months"], reason=data["reason"]
        ),
        "Extend the deadline by up to two months in all, with a reason the person sees.",
    ),
    "reject": (
        ReasonInput,
        lambda rid, actor, data: rights_request_reject(request_id=rid, actor=actor, reason=data["reason"]),
        "Reject the request, with a reason the person sees.",
    ),
    "complete": (
        None,
        lambda rid, actor, data: rights_request_complete(request_id=rid, actor=actor),
        "Complete what needs staff: apply a rectification, or (re)start an export's build.",
    ),
    "hold": (
        ReasonInput,
        lambda rid, actor, data: rights_legal_hold_set(request_id=rid, actor=actor, reason=data["reason"]),
        "Put an erasure on legal hold, with a reason the person sees: it waits until released.",
    ),
    "release": (
        None,
        lambda rid, actor, data: rights_legal_hold_lift(request_id=rid, actor=actor),
        "Lift a legal hold; an erasure past its grace period then runs at the next sweep.",
    ),
    "lift": (None, _lift, "Lift the restriction of processing a restriction request set."),
}


def _step_view(name: str) -> Any:
    input_class, step, doc = _STEPS[name]

    def post(self: StaffAPIView, request: Request, request_id: uuid.UUID) -> Response:
        self.found(request_id)
        data: dict[str, Any] = {}
        if input_class is not None:
            form = input_class(data=request.data)
            form.is_valid(raise_exception=True)
            data = dict(form.validated_data)
        step(request_id, self.actor(), data)
        return Response(StaffRightsRequestOutput(self.found(request_id)).data)

    post.__doc__ = doc
    examples = [OpenApiExample(name, value=_STEP_EXAMPLES[name], request_only=True)] if name in _STEP_EXAMPLES else []
    documented = extend_schema(
        request=input_class, responses=StaffRightsRequestOutput, operation_id=f"requests_{name}", examples=examples
    )
    view: Any = type(f"Request{name.title()}View", (StaffAPIView,), {"__doc__": doc, "post": documented(post)})
    return view.as_view()


STAFF_STEPS = {name: _step_view(name) for name in _STEPS}
