"""Sign-up with consent: what every way of creating an account asks, and records.

`ConsentSignupForm` is allauth's `ACCOUNT_SIGNUP_FORM_CLASS`, the base allauth puts under *every*
sign-up form: the classic page (`account/signup.html`), the headless API's sign-up input
(`POST /_allauth/{app,browser}/v1/auth/signup`) and the social sign-up form and input. So they all
ask the same questions and record the answers the same way:

- the date of birth and the country, which feed the consent age gate and are stored in the
  profile (encrypted, source "registration"); required only when a consent is ticked (least data
  in: nothing else at sign-up needs them);
- one unticked checkbox per consent-based purpose with a policy in force (`consents`, a list of
  purpose slugs), each with the policy version shown carried in a hidden field
  `policy_<slug>` (optional for API clients: missing means the version in force);
- purposes on a contract or legal obligation (or a legitimate interest) are only explained
  (`service_purposes`).

A headless sign-up posts, for example: `{"email": "a@example.com", "password": "...",
"birth_date": "1990-06-01", "country": "NL", "consents": ["analytics"], "policy_analytics": "1"}`;
errors come back in allauth's envelope with `param` naming the field (`consents` for the choices).

Interface kept stable for other sign-up forms (`ConsentChoicesMixin`):
- `__init__` adds the fields `birth_date`, `country`, `consents` and `policy_<slug>`, and the
  attributes `consent_offers` (`ConsentOffer`s) and `service_purposes` (`PurposeConsent`s);
- `clean()` validates the date of birth, the country and the ticked purposes (both given when
  something is ticked, policy version still in force, old enough to consent alone, Global
  Privacy Control);
- `save_consents(request, user)` hands the answers (`signup_choices()`) to the accounts app's
  sign-up flow (`accounts.signup`), which writes the profile values and records every choice in
  one transaction; calling it again on the same form does nothing;
- `declared_profile_values()` says which profile values `save_consents` stores as typed in
  (override it to leave out one that is copied from elsewhere).

allauth's social sign-up form already derives from `ConsentSignupForm`, so it needs no mixin;
listing `ConsentChoicesMixin` in a subclass anyway is harmless (see `ConsentChoicesMixin`).
This module must not import `allauth.account.forms`, which imports it.
"""

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.hashers import make_password
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_countries import countries

from accounts.signup import CONSENTS, ConsentChoice, SignupChoices, signup_consents_record
from consent.errors import InvalidBirthDate
from consent.gpc import request_evidence
from consent.models import NO_CHOICE_BASES, LegalBasis, Purpose
from consent.selectors import PurposeConsent, consent_states
from consent.services import age_in_years, birth_date_check, digital_consent_age

POLICY_PREFIX = "policy_"


@dataclass(frozen=True)
class ConsentOffer:
    """One consent-based purpose offered at sign-up, with what the page shows about it."""

    purpose: PurposeConsent
    label: str  # the policy version in force, which the form shows and a grant names
    checked: bool  # ticked in the submitted data (re-displaying the form keeps the choice)
    gpc_blocked: bool  # the browser sends Global Privacy Control and this purpose is a sale/sharing

    @property
    def slug(self) -> str:
        return self.purpose.purpose

    @property
    def policy_field(self) -> str:
        return POLICY_PREFIX + self.slug

    @property
    def policy_url(self) -> str:
        return reverse("consent-policy", args=[self.slug, self.label])

    @property
    def input_id(self) -> str:
        return f"id_consent_{self.slug}"


def _current_request() -> HttpRequest | None:
    """The request being served: allauth's headless inputs are built without one, so forms read
    it from allauth's request context, as allauth's own inputs do."""
    from allauth.core import context

    request = context.request
    return request if isinstance(request, HttpRequest) else None


class _ConsentChoices(forms.Form):
    """The behaviour; see the module docstring. Both `ConsentChoicesMixin` and
    `ConsentSignupForm` derive from it, so a form may list the mixin in front of an allauth form
    that already carries it without an inconsistent method resolution order, and every method
    still runs once."""

    field_order = ["email", "email2", "password1", "password2", "password", "birth_date", "country", CONSENTS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = _current_request()
        self._gpc = bool(getattr(request, "gpc", False))
        self._consents_saved = False
        # The register of purposes as someone who never chose sees it (a fresh subject id).
        register = [item for item in consent_states(subject_id=uuid.uuid4()) if item.current_policy is not None]
        self.service_purposes: list[PurposeConsent] = [
            item for item in register if item.legal_basis in NO_CHOICE_BASES | {LegalBasis.LEGITIMATE_INTEREST}
        ]
        offered = [item for item in register if item.legal_basis == LegalBasis.CONSENT]

        # Asked always, required only to agree to something (least data in): the age gate needs
        # them for a consent, nothing else at sign-up does.
        self.fields["birth_date"] = forms.DateField(
            label=_("Date of birth"),
            required=False,
            help_text=_(
                "Needed if you allow anything below: under a certain age a parent or guardian has to agree "
                "for you. Kept encrypted in your profile."
            ),
            widget=forms.DateInput(attrs={"type": "date", "autocomplete": "bday"}, format="%Y-%m-%d"),
            error_messages={"invalid": _("Enter a date like 2001-04-30.")},
        )
        self.fields["country"] = forms.ChoiceField(
            label=_("Country you live in"),
            required=False,
            help_text=_("Needed if you allow anything below: its law decides from what age you can agree on your own."),
            choices=[("", _("Choose a country")), *countries],
            widget=forms.Select(attrs={"autocomplete": "country"}),
        )
        self.fields[CONSENTS] = forms.MultipleChoiceField(
            label=_("What you allow"),
            required=False,
            choices=[(item.purpose, item.name) for item in offered],
            widget=forms.CheckboxSelectMultiple,
        )
        for item in offered:
            assert item.current_policy is not None
            self.fields[POLICY_PREFIX + item.purpose] = forms.CharField(
                required=False, max_length=32, widget=forms.HiddenInput, initial=item.current_policy.label
            )
        ticked = set(self[CONSENTS].value() or []) if self.is_bound else set()
        self.consent_offers: list[ConsentOffer] = [
            ConsentOffer(
                purpose=item,
                label=item.current_policy.label,
                checked=item.purpose in ticked,
                gpc_blocked=self._gpc and item.is_sale_or_sharing,
            )
            for item in offered
            if item.current_policy is not None
        ]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or self.cleaned_data
        if getattr(self, "account_already_exists", False):
            # allauth answers a taken address as it answers a new one (no enumeration), but only
            # the new one costs a password hash: the time would tell. Hash the submitted
            # password here too, with the same hasher, and throw the result away.
            make_password(cleaned.get("password1") or cleaned.get("password") or secrets.token_urlsafe())
        today = timezone.localdate()
        born = cleaned.get("birth_date")
        if born is not None:
            try:
                birth_date_check(born, today=today)  # the rule the profile and the consent API apply
            except InvalidBirthDate as error:
                self.add_error("birth_date", error.message)
                born = None
        country = cleaned.get("country") or ""
        offers = {offer.slug: offer for offer in self.consent_offers}
        ticked = [offers[slug] for slug in cleaned.get(CONSENTS) or [] if slug in offers]

        changed = [offer for offer in ticked if (cleaned.get(offer.policy_field) or offer.label) != offer.label]
        if changed:
            self.add_error(
                CONSENTS,
                gettext(
                    "We published a new version of the policy for %(purposes)s while you were signing up. "
                    "Please read it (the link is next to the choice) and tick again if you agree."
                )
                % {"purposes": ", ".join(offer.purpose.name for offer in changed)},
            )
        blocked = [offer for offer in ticked if offer.gpc_blocked]
        if blocked:
            self.add_error(
                CONSENTS,
                gettext(
                    "Your browser sends Global Privacy Control, so we do not share your data for %(purposes)s. "
                    "You can still allow it later on your consent page."
                )
                % {"purposes": ", ".join(offer.purpose.name for offer in blocked)},
            )
        if ticked and born is None and "birth_date" not in self.errors:
            self.add_error("birth_date", gettext("Tell us your date of birth to allow what you ticked below."))
        if ticked and not country and "country" not in self.errors:
            self.add_error("country", gettext("Choose the country you live in to allow what you ticked below."))
        if born is not None and country and ticked:
            age = age_in_years(born, today)
            rules = Purpose.objects.in_bulk([offer.slug for offer in ticked], field_name="slug")
            too_young = [offer for offer in ticked if age < digital_consent_age(rules[offer.slug], country)]
            if too_young:
                self.add_error(
                    CONSENTS,
                    gettext(
                        "You are under the age at which you can agree on your own to %(purposes)s: a parent or "
                        "guardian has to agree for you. Untick these to create your account now; a parent or "
                        "guardian can agree for you later."
                    )
                    % {"purposes": ", ".join(offer.purpose.name for offer in too_young)},
                )
        return cleaned

    def declared_profile_values(self) -> dict[str, Any]:
        """The profile values the person typed in (date of birth, country), which
        `save_consents` stores with source "registration". A form that fills one of them from
        elsewhere (a provider's claim the person agreed to copy) drops it here and stores it
        with its own source."""
        data = self.cleaned_data
        return {key: data[key] for key in ("birth_date", "country") if data.get(key)}

    def signup_choices(self) -> SignupChoices:
        """What the person answered, for `accounts.signup.signup_consents_record`."""
        data = self.cleaned_data
        return SignupChoices(
            declared=self.declared_profile_values(),
            birth_date=data.get("birth_date"),
            country=data.get("country") or "",
            choices=[
                ConsentChoice(
                    purpose=offer.slug,
                    label_in_force=offer.label,
                    label_shown=data.get(offer.policy_field) or "",
                    ticked=offer.slug in set(data.get(CONSENTS) or []),
                    double_opt_in=offer.purpose.requires_double_opt_in,
                    gpc_blocked=offer.gpc_blocked,
                )
                for offer in self.consent_offers
            ],
        )

    def save_consents(self, request: HttpRequest, user: Any) -> None:
        """Record this sign-up's profile values and choices for `user` (see
        `accounts.signup.signup_consents_record`); calling it again on the same form does nothing."""
        if self._consents_saved:
            return
        signup_consents_record(
            subject_id=user.pk,
            choices=self.signup_choices(),
            evidence=request_evidence(request),
            gpc=bool(getattr(request, "gpc", False)),
        )
        self._consents_saved = True


class ConsentChoicesMixin(_ConsentChoices):
    """Consent choices, date of birth and country for a sign-up form: see the module docstring
    for the interface (fields added in `__init__`, `clean()`, `save_consents(request, user)`)."""


class ConsentSignupForm(_ConsentChoices):
    """allauth's `ACCOUNT_SIGNUP_FORM_CLASS`: the base of every sign-up form and input."""

    def signup(self, request: HttpRequest, user: Any) -> None:
        """allauth's hook, called once the user is saved. `accounts.adapter.AccountAdapter`
        has already recorded the choices in the user's transaction; this covers any path that
        saves the user otherwise."""
        self.save_consents(request, user)
