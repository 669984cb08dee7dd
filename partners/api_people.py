"""Reading people (`/api/v1/partner/people/...`, `/api/v1/partner/changes/`): one person's profile
for a purpose, the changes feed, and a lookup by e-mail or phone. Every value is read through the
gate with the client's purpose and `Actor.partner(client.slug)`; a person who did not consent,
restricted processing or was erased answers exactly as one who does not exist (docs/partners.md,
"Reading people")."""

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from consent.selectors import consent_changes_since, consent_granted_subjects
from partners.api import PartnerAPIView
from partners.errors import FieldsNotGranted, FieldsOutOfScope, InvalidCursor, UnknownPerson
from partners.secrets import cursor_seal, cursor_unseal
from partners.selectors import pairwise_known
from partners.services import pairwise_ids_for
from profiles.errors import ConsentRequired, FieldNotSearchable, PersonErased, ProcessingRestricted
from profiles.gate import Actor, profile_find, profile_read
from profiles.selectors import profile_changes_since, unscoped_field_definitions
from vault.errors import ApplicationError

# What the gate says about a person that the client must not learn: each answers 404, as an
# unknown id does, so consent, restriction and erasure do not leak.
_HIDDEN = (ConsentRequired, ProcessingRestricted, PersonErased)


def _unknown_fields(keys: list[str]) -> FieldsOutOfScope:
    """The error for fields outside the client's scope: schema keys are named, anything else
    (it could be a value typed in the wrong place) is counted, never echoed."""
    known = set(unscoped_field_definitions().filter(key__in=keys).values_list("key", flat=True))
    return FieldsOutOfScope([key for key in keys if key in known], sum(1 for key in keys if key not in known))


class FieldValueOutput(serializers.Serializer):
    value = serializers.JSONField(help_text="The value (dates and decimals as ISO text).")
    source = serializers.CharField(  # type: ignore[assignment] # declared fields are popped off the class
        help_text="How it was collected: self_service, social, partner, import, staff..."
    )
    collected_on = serializers.DateField(help_text="The day it was collected (UTC).")


class PersonOutput(serializers.Serializer):
    person = serializers.CharField(help_text="The person's id for this client.")
    purpose = serializers.CharField()
    fields = serializers.DictField(  # type: ignore[assignment] # DRF pops declared fields off the class
        child=FieldValueOutput(allow_null=True),
        help_text="Each field asked (or, by default, each field of the client's scope that serves the purpose): "
        "its value with provenance, or null when the person has none.",
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, list | dict | bool | int | str) or value is None:
        return value
    return value.isoformat() if isinstance(value, date) else str(value)


class PersonView(PartnerAPIView):
    """One person's profile for one purpose: the permitted fields of the client's scope."""

    @extend_schema(
        operation_id="partner_person_read",
        parameters=[
            OpenApiParameter("purpose", str, required=True, description="The purpose the data is read for."),
            OpenApiParameter(
                "fields",
                str,
                required=False,
                description="Comma-separated field keys; by default every field of the client's scope that "
                "serves the purpose. A field outside the scope is 403 fields_not_granted, one that does not "
                "serve the purpose 403 field_not_for_purpose.",
            ),
        ],
        responses=PersonOutput,
        examples=[
            OpenApiExample(
                "A person's e-mail fields",
                value={
                    "person": "k3q5c2xv7m4n8p6r2t4w6y8z2a",
                    "purpose": "personalization",
                    "fields": {
                        "given_name": {"value": "Ada", "source": "self_service", "collected_on": "2025-03-01"},
                        "city": None,
                    },
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, person: str) -> Response:
        purpose = _required(request, "purpose")
        self.purpose_check(purpose)
        client = self.client
        asked = request.query_params.get("fields")
        if asked is None:
            if not client.fields:
                raise FieldsNotGranted("This client may read no profile field.")
            keys, permitted_only = list(client.fields), True
        else:
            keys = list(dict.fromkeys(key.strip() for key in asked.split(",") if key.strip()))
            if not keys:
                raise ApplicationError("Name at least one field, or leave fields out.", code="required", param="fields")
            if outside := [key for key in keys if key not in client.fields]:
                raise _unknown_fields(outside)
            permitted_only = False
        subject = self.person(person)
        try:
            held = profile_read(
                subject_id=subject,
                fields=keys,
                purpose=purpose,
                actor=Actor.partner(client.slug),
                permitted_only=permitted_only,
            )
        except _HIDDEN:
            raise UnknownPerson() from None
        # The fields read: those asked, or those of the scope the gate let through (it audited them).
        read = held.fields_read
        body = {
            "person": person,
            "purpose": purpose,
            "fields": {
                key: (
                    {
                        "value": _json_value(held[key].value),
                        "source": held[key].source,
                        "collected_on": held[key].collected_at.astimezone(UTC).date(),
                    }
                    if key in held
                    else None
                )
                for key in read
            },
        }
        return Response(PersonOutput(body).data)


def _required(request: Request, name: str) -> str:
    value = request.query_params.get(name, "").strip()
    if not value:
        raise ApplicationError("This parameter is required.", code="required", param=name)
    return value


# --- The changes feed ------------------------------------------------------------------------

PAGE_SIZE, MAX_PAGE_SIZE = 100, 500
_CURSOR_SALT = "partners.changes"


class ChangeOutput(serializers.Serializer):
    person = serializers.CharField(help_text="The person's id for this client.")
    granted = serializers.BooleanField(help_text="Whether the purpose's processing may go on for them now.")
    consent_changed = serializers.BooleanField(help_text="Their consent to the purpose changed (see granted).")
    fields = serializers.ListField(  # type: ignore[assignment] # as in PersonOutput
        child=serializers.CharField(),
        help_text="Permitted fields whose value changed (names only: read the values with the person's profile).",
    )


class ChangesOutput(serializers.Serializer):
    results = ChangeOutput(many=True)
    cursor = serializers.CharField(help_text="Pass it back to get what changed after this page.")
    more = serializers.BooleanField(help_text="Whether more changes wait already (ask again at once).")


def _position(value: Any) -> tuple[datetime, uuid.UUID] | None:
    return None if value is None else (datetime.fromisoformat(value[0]), uuid.UUID(value[1]))


def _cursor_read(token: str | None, *, client_id: str, purpose: str) -> dict[str, Any]:
    """The positions a cursor holds ({} without one). Signed, then sealed for this client, and
    bound to the purpose: another client's, another purpose's or an altered cursor is refused."""
    if not token:
        return {}
    try:
        sealed = signing.loads(token, salt=_CURSOR_SALT)
        state = json.loads(cursor_unseal(sealed, client_id=client_id))
        if state.get("purpose") != purpose:
            raise ValueError("another purpose")
        return {"consent": _position(state.get("consent")), "profile": _position(state.get("profile"))}
    except Exception:  # a bad signature, envelope or payload: all the same to the caller
        raise InvalidCursor() from None


def _cursor_make(positions: dict[str, Any], *, client_id: str, purpose: str) -> str:
    state = {
        "purpose": purpose,
        **{name: None if at is None else [at[0].isoformat(), str(at[1])] for name, at in positions.items()},
    }
    sealed = cursor_seal(json.dumps(state).encode(), client_id=client_id)
    return signing.dumps(sealed, salt=_CURSOR_SALT, compress=True)


class ChangesView(PartnerAPIView):
    """Who changed since a cursor: people whose consent to the purpose, or whose permitted fields,
    changed. Ids and field names only; consent state now."""

    @extend_schema(
        operation_id="partner_changes",
        parameters=[
            OpenApiParameter("purpose", str, required=True),
            OpenApiParameter("cursor", str, required=False, description="The previous page's; none: from the start."),
            OpenApiParameter("limit", int, required=False, description=f"Changes per page, at most {MAX_PAGE_SIZE}."),
        ],
        responses=ChangesOutput,
        examples=[
            OpenApiExample(
                "Two people",
                value={
                    "results": [
                        {
                            "person": "k3q5c2xv7m4n8p6r2t4w6y8z2a",
                            "granted": False,
                            "consent_changed": True,
                            "fields": [],
                        },
                        {
                            "person": "b7d2f4h6j8k2m4n6p8r2t4v6x8",
                            "granted": True,
                            "consent_changed": False,
                            "fields": ["city", "given_name"],
                        },
                    ],
                    "cursor": "eyJ...:1u2v3w:...",
                    "more": False,
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        purpose = _required(request, "purpose")
        self.purpose_check(purpose)
        client = self.client
        limit = _limit(request)
        positions = _cursor_read(request.query_params.get("cursor"), client_id=str(client.pk), purpose=purpose)
        # Acts recorded in the last moments may still be committing with an earlier time: they
        # are left for the next page rather than skipped for good.
        until = timezone.now() - timedelta(seconds=settings.PARTNER_CHANGES_SETTLE_SECONDS)
        consent = consent_changes_since(purpose=purpose, since=positions.get("consent"), limit=limit, until=until)
        keys = list(
            unscoped_field_definitions()
            .filter(key__in=client.fields, purposes__slug=purpose)
            .values_list("key", flat=True)
        )
        profile = profile_changes_since(field_keys=keys, since=positions.get("profile"), limit=limit, until=until)
        # The page: the oldest `limit` of both streams, each stream's position moved past what it
        # gave. Items: (time, stream, row id, subject, field key or "" for a consent act).
        merged = sorted(
            [(c.occurred_at, "consent", c.id, c.subject_id, "") for c in consent]
            + [(p.changed_at, "profile", p.id, p.subject_id, p.key) for p in profile],
            key=lambda item: (item[0], item[1]),
        )[:limit]
        new_positions = dict(positions)
        for at, stream, row_id, _, _ in merged:
            new_positions[stream] = (at, row_id)
        more = len(consent) == limit or len(profile) == limit
        subjects = list(dict.fromkeys(item[3] for item in merged))
        granted = consent_granted_subjects(subject_ids=subjects, purpose=purpose) if subjects else set()
        # Whom the client may hear about: people who may be processed for the purpose now, and,
        # for a consent change, people it already knows (so it learns of a withdrawal). A stranger
        # who refused, or whose data changed without their consent, is not news for it.
        known = pairwise_known(client=client, subject_ids=[s for s in subjects if s not in granted])
        ids = {**known, **pairwise_ids_for(client=client, subject_ids=[s for s in subjects if s in granted])}
        people: dict[uuid.UUID, dict[str, Any]] = {}
        for _, stream, _, subject, key in merged:
            if subject not in ids or (stream == "profile" and subject not in granted):
                continue
            entry = people.setdefault(
                subject,
                {"person": ids[subject], "granted": subject in granted, "consent_changed": False, "fields": []},
            )
            if stream == "consent":
                entry["consent_changed"] = True
            elif key not in entry["fields"]:
                entry["fields"].append(key)
        for entry in people.values():
            entry["fields"].sort()
        body = {
            "results": list(people.values()),
            "cursor": _cursor_make(new_positions, client_id=str(client.pk), purpose=purpose),
            "more": more,
        }
        return Response(ChangesOutput(body).data)


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise ApplicationError(f"A whole number from 1 to {MAX_PAGE_SIZE}.", code="invalid", param="limit")
    return int(raw)


# --- Lookup by e-mail or phone ----------------------------------------------------------------

LOOKUP_FIELDS = ("email", "phone")


class LookupInput(serializers.Serializer):
    field = serializers.ChoiceField(choices=LOOKUP_FIELDS)
    value = serializers.CharField(max_length=320)
    purpose = serializers.SlugField(max_length=64)


class LookupOutput(serializers.Serializer):
    people = serializers.ListField(
        child=serializers.CharField(),
        help_text="The ids, for this client, of the people holding the value (usually one; a shared phone, more).",
    )


class LookupView(PartnerAPIView):
    """Who holds this exact e-mail address or phone number, among the people who consented to
    the purpose. The value travels in the body, never in the URL (it would reach access logs)."""

    @extend_schema(
        operation_id="partner_person_lookup",
        request=LookupInput,
        responses=LookupOutput,
        examples=[
            OpenApiExample(
                "By e-mail",
                value={"field": "email", "value": "ada@example.com", "purpose": "advertising-partners"},
                request_only=True,
            ),
            OpenApiExample("Found", value={"people": ["k3q5c2xv7m4n8p6r2t4w6y8z2a"]}, response_only=True),
        ],
    )
    def post(self, request: Request) -> Response:
        given = LookupInput(data=request.data)
        given.is_valid(raise_exception=True)
        field, value, purpose = (given.validated_data[name] for name in ("field", "value", "purpose"))
        self.purpose_check(purpose)
        client = self.client
        if field not in client.fields:
            raise _unknown_fields([field])
        try:
            found = profile_find(field=field, value=value, purpose=purpose, actor=Actor.partner(client.slug))
        except FieldNotSearchable:
            raise _unknown_fields([field]) from None
        if not found:  # nobody, or nobody who consented: the same answer
            raise UnknownPerson(param="value")
        ids = pairwise_ids_for(client=client, subject_ids=found)
        return Response(LookupOutput({"people": [ids[subject] for subject in found]}).data)
