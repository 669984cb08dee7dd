"""The partners API (`/api/v1/partner/`): what a partner client may know about people, for the
purposes it holds. Every view derives from `PartnerAPIView`: the caller is a client (an API key),
never a person or staff; people are named by the client's pairwise ids only."""

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consent.selectors import consent_is_granted
from partners.authentication import PartnerKeyAuthentication, PartnerPrincipal, PartnerRateThrottle
from partners.errors import PurposeNotGranted, UnknownPerson
from partners.models import PartnerClient
from partners.selectors import subject_of


class IsPartner(permissions.BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.user, PartnerPrincipal)


class PartnerAPIView(APIView):
    """The base of every partner view: API-key authentication only (a person's session or a
    staff member gets 401), the client's own rate, and the client's purposes and ids."""

    authentication_classes = (PartnerKeyAuthentication,)
    permission_classes = (IsPartner,)
    throttle_classes = (PartnerRateThrottle,)

    @property
    def client(self) -> PartnerClient:
        user = self.request.user
        assert isinstance(user, PartnerPrincipal)  # IsPartner
        return user.client

    def purpose_check(self, purpose: str) -> None:
        if purpose not in self.client.purposes:
            raise PurposeNotGranted(param="purpose")

    def person(self, pairwise: str) -> Any:
        subject = subject_of(client=self.client, pairwise=pairwise)
        if subject is None:
            raise UnknownPerson()
        return subject


class ConsentCheckOutput(serializers.Serializer):
    person = serializers.CharField(help_text="The person's id for this client.")
    purpose = serializers.CharField()
    granted = serializers.BooleanField(help_text="Whether the purpose's processing may go on for this person now.")


class ConsentCheckView(PartnerAPIView):
    """May I use this person's data for this purpose now? ("may I e-mail this person now?")"""

    @extend_schema(
        responses=ConsentCheckOutput,
        operation_id="partner_consent_check",
        examples=[
            OpenApiExample(
                "Granted",
                value={"person": "k3q5c2xv7m4n8p6r2t4w6y8z2a", "purpose": "email-marketing", "granted": True},
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, person: str, purpose: str) -> Response:
        self.purpose_check(purpose)
        subject = self.person(person)
        granted = consent_is_granted(subject_id=subject, purpose=purpose)
        return Response({"person": person, "purpose": purpose, "granted": granted})
