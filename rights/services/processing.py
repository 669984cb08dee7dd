"""The rights that change what may be done with the data, rather than disclose or destroy it:
restriction (Art. 18), objection (Art. 21), the CCPA opt-outs of sale and sharing and of the
use of sensitive information, and rectification that staff complete (Art. 16). Each is a
request record; those that only lessen processing take effect at once."""

import uuid
from typing import Any

from django.db import transaction

from consent.models import NO_CHOICE_BASES, ConsentStatus, LegalBasis, Method
from consent.selectors import consent_states
from consent.services import Evidence, consent_refuse, consent_withdraw
from profiles.gate import RIGHTS_PURPOSE, Actor, profile_values_check, profile_write, rights_rows_unseal
from profiles.models import Source
from profiles.selectors import special_category_purposes, unscoped_field_definitions
from profiles.services import profile_restrict, profile_restriction_lift
from rights.errors import FieldEditable, InvalidTransition, NothingToObjectTo
from rights.models import Kind, RightsRequest, Status, Verification
from rights.services.requests import open_request_for_update, request_complete, request_record

_SAID_NO = (ConsentStatus.WITHDRAWN, ConsentStatus.REFUSED)


def restriction_request(*, subject_id: uuid.UUID, channel: str, actor: Actor) -> RightsRequest:
    """Restrict processing now: the gate then refuses every purpose but the person's rights and
    legal obligations, until the person or staff lift it."""
    with transaction.atomic():
        request = request_record(
            subject_id=subject_id,
            kind=Kind.RESTRICTION,
            channel=channel,
            verification=Verification.SESSION,
            actor=actor,
        )
        profile_restrict(subject_id=subject_id, actor=actor)
        request_complete(request, actor)
    return request


def restriction_lift(*, subject_id: uuid.UUID, actor: Actor) -> bool:
    """Lift the restriction (by the person, or by staff once the question is settled)."""
    return profile_restriction_lift(subject_id=subject_id, actor=actor)


def _method(channel: str) -> str:
    return Method.API if channel == "api" else Method.WEB_FORM


def _say_no(subject_id: uuid.UUID, slugs: list[str], channel: str, evidence: Evidence | None) -> list[str]:
    """Withdraw (or object to) each purpose in `slugs` the person has not already said no to,
    and refuse those never decided; returns the slugs recorded. Each is a ledger event with its
    receipt."""
    states = {state.purpose: state for state in consent_states(subject_id=subject_id)}
    recorded = []
    for slug in slugs:
        state = states[slug]
        if state.state in _SAID_NO or state.legal_basis in NO_CHOICE_BASES:
            continue
        # An objection to a legitimate interest is a withdrawal (it stood without a choice);
        # a consent never given is refused, so the person is not asked again as if undecided.
        say_no = consent_refuse if state.state == ConsentStatus.NOT_GIVEN else consent_withdraw
        say_no(subject_id=subject_id, purpose=slug, method=_method(channel), evidence=evidence)
        recorded.append(slug)
    return recorded


def objectable_purposes(*, subject_id: uuid.UUID) -> list[Any]:
    """The purposes based on legitimate interest: the ones a person objects to (Art. 21)."""
    return [
        state for state in consent_states(subject_id=subject_id) if state.legal_basis == LegalBasis.LEGITIMATE_INTEREST
    ]


def objection_request(
    *, subject_id: uuid.UUID, purposes: list[str], channel: str, actor: Actor, evidence: Evidence | None = None
) -> RightsRequest:
    """Object to processing based on legitimate interest: recorded in the ledger (as for a
    withdrawal), so the gate stops that processing at once."""
    allowed = {state.purpose for state in objectable_purposes(subject_id=subject_id)}
    wanted = list(dict.fromkeys(purposes))
    if not wanted or any(slug not in allowed for slug in wanted):
        raise NothingToObjectTo()
    with transaction.atomic():
        request = request_record(
            subject_id=subject_id,
            kind=Kind.OBJECTION,
            channel=channel,
            verification=Verification.SESSION,
            actor=actor,
            purposes=wanted,
        )
        _say_no(subject_id, wanted, channel, evidence)
        request_complete(request, actor)
    return request


def sale_sharing_opt_out(*, subject_id: uuid.UUID, channel: str, evidence: Evidence | None = None) -> list[str]:
    """CCPA "Do Not Sell or Share My Personal Information": every sale and sharing purpose
    withdrawn (or refused) in one step; returns the purposes recorded."""
    slugs = [state.purpose for state in consent_states(subject_id=subject_id) if state.is_sale_or_sharing]
    with transaction.atomic():
        return _say_no(subject_id, slugs, channel, evidence)


def sensitive_use_limit(*, subject_id: uuid.UUID, channel: str, evidence: Evidence | None = None) -> list[str]:
    """CCPA "Limit the Use of My Sensitive Personal Information": every purpose that
    special-category fields serve, withdrawn (or refused) in one step."""
    sensitive = special_category_purposes()
    slugs = [state.purpose for state in consent_states(subject_id=subject_id) if state.purpose in sensitive]
    with transaction.atomic():
        return _say_no(subject_id, slugs, channel, evidence)


def rectification_request(
    *, subject_id: uuid.UUID, values: dict[str, Any], channel: str, verification: str, actor: Actor
) -> RightsRequest:
    """A correction the person cannot make themselves (a field they may not edit): checked now
    as it will be written, sealed with the request, and applied when staff complete it."""
    editable = unscoped_field_definitions().filter(key__in=list(values), person_can_edit=True)
    if key := editable.values_list("key", flat=True).first():
        raise FieldEditable(param=key)
    profile_values_check(values=values, source=Source.STAFF, purpose=RIGHTS_PURPOSE, actor=Actor.system("rights"))
    return request_record(
        subject_id=subject_id,
        kind=Kind.RECTIFICATION,
        channel=channel,
        verification=verification,
        actor=actor,
        details=values,
    )


def rectification_complete(*, request_id: uuid.UUID, actor: Actor) -> RightsRequest:
    """Staff apply the corrected values the request carries; the earlier values go to history."""
    with transaction.atomic():
        request = open_request_for_update(request_id)
        if request.kind != Kind.RECTIFICATION:
            raise InvalidTransition()
        if request.status == Status.RECEIVED:
            raise InvalidTransition("Verify the person's identity first.")
        (values,) = rights_rows_unseal(subject_id=request.subject_id, rows=[request], field="details", actor=actor)
        profile_write(
            subject_id=request.subject_id, values=values, source=Source.STAFF, purpose=RIGHTS_PURPOSE, actor=actor
        )
        request_complete(request, actor)
    return request
