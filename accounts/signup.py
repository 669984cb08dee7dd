"""The writes behind every sign-up: the person's declared profile values and their consent
choices, recorded together. The sign-up forms (classic, headless and social, in the portal) only
collect and validate the answers; allauth's account adapter calls the form's `save_consents`,
which calls `signup_consents_record` in the same transaction as the new user row. This is the
one place that turns answers into records, the way allauth keeps `account/internal/flows/` for
its classic and headless views alike.
"""

import datetime
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from consent.errors import PolicyNotCurrent
from consent.models import Method
from consent.services import Evidence, age_in_years, consent_grant, consent_refuse, consent_request
from profiles.gate import RIGHTS_PURPOSE, Actor, profile_write
from profiles.models import Source

# The sign-up input that carries the ticked purposes (a list of slugs). Errors about the choices
# name it as their `param` in the headless API.
CONSENTS = "consents"


@dataclass(frozen=True)
class ConsentChoice:
    """One consent-based purpose offered at sign-up, and what the person did with it."""

    purpose: str
    label_in_force: str  # the policy version in force when the form was built
    label_shown: str  # the version the page says it showed; "" when an API client sent none
    ticked: bool
    double_opt_in: bool  # a grant needs a confirmation by mail first
    gpc_blocked: bool  # Global Privacy Control answered this sale/sharing purpose


@dataclass(frozen=True)
class SignupChoices:
    """A validated sign-up's answers: profile values typed in, date of birth, country, choices."""

    declared: dict[str, Any]
    birth_date: datetime.date | None
    country: str
    choices: list[ConsentChoice] = field(default_factory=list)


@runtime_checkable
class ConsentSignup(Protocol):
    """A sign-up form that records consent choices (the portal's forms); the account adapter
    saves the user and calls `save_consents` in one transaction."""

    def save_consents(self, request: HttpRequest, user: Any) -> None: ...

    def add_error(self, field: str | None, error: Any) -> None: ...


def signup_consents_record(*, subject_id: uuid.UUID, choices: SignupChoices, evidence: Evidence, gpc: bool) -> None:
    """Store the declared values in the person's profile (source "registration") and record each
    choice: a grant (method "web form", naming the version shown) for each ticked purpose, a
    confirmation e-mail (double opt-in, left pending) for a ticked purpose that needs one, and a
    refusal for each purpose shown and left unticked (method "gpc" for a sharing purpose the
    browser's Global Privacy Control answered). All or nothing: a consent error (a policy
    published a moment ago) rolls everything back and propagates."""
    born, country = choices.birth_date, choices.country
    age = None if born is None else age_in_years(born, timezone.localdate())
    with transaction.atomic():
        if choices.declared:
            profile_write(
                subject_id=subject_id,
                values=choices.declared,
                source=Source.REGISTRATION,
                purpose=RIGHTS_PURPOSE,
                actor=Actor.person(subject_id),
            )
        confirm_by_mail = []
        for choice in choices.choices:
            shown = choice.label_shown
            if choice.ticked:
                if shown and shown != choice.label_in_force:  # the form let it through: a race with publishing
                    raise PolicyNotCurrent()
                if choice.double_opt_in:
                    confirm_by_mail.append(choice)
                    continue
                consent_grant(
                    subject_id=subject_id,
                    purpose=choice.purpose,
                    policy_version=choice.label_in_force,
                    method=Method.WEB_FORM,
                    evidence=evidence,
                    jurisdiction=country,
                    gpc=gpc,
                    age=age,
                )
            elif shown:  # a refusal names what was shown; an API client that sent no label showed nothing we know
                consent_refuse(
                    subject_id=subject_id,
                    purpose=choice.purpose,
                    policy_version=shown,
                    method=Method.GPC if choice.gpc_blocked and gpc else Method.WEB_FORM,
                    evidence=evidence,
                    jurisdiction=country,
                )
        # Last: these send mail, which a rollback cannot take back.
        for choice in confirm_by_mail:
            consent_request(
                subject_id=subject_id, purpose=choice.purpose, evidence=evidence, jurisdiction=country, age=age, gpc=gpc
            )
