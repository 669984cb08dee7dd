"""The social sign-up screen: allauth's form plus, per profile field, whether to import what the
provider sent. Nothing is ticked in advance (DESIGN.md invariant 6: least data in).

The consent choices, date of birth and country are those of the e-mail sign-up
(`ConsentChoicesMixin`, which allauth also puts under this form as `ACCOUNT_SIGNUP_FORM_CLASS`;
named here so the screen keeps asking them whatever that setting says), recorded by the account
adapter in the same transaction as the account. A person who lets us copy their birthday or country from the provider
need not type it as well (the age gate reads the copy); one who types a different date than the
one they let us copy is asked which is right.
"""

from typing import Any

from allauth.socialaccount.forms import SignupForm
from django import forms
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.social import ImportOffer, social_import_offers
from portal.forms import ConsentChoicesMixin

IMPORT_FIELDS = "import_fields"
# Fields the consent part of the form asks for that an import can answer instead.
_ANSWERED_BY_IMPORT = ("birth_date", "country")


class SocialSignupForm(ConsentChoicesMixin, SignupForm):
    import_fields = forms.MultipleChoiceField(
        label=_("Copy from your account there"),
        help_text=_("Only what you tick is copied into your profile. You can change or delete it later."),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.import_offers: list[ImportOffer] = social_import_offers(self.sociallogin)
        field = self.fields[IMPORT_FIELDS]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(offer.key, f"{offer.label}: {offer.shown}") for offer in self.import_offers]
        if not self.import_offers:
            del self.fields[IMPORT_FIELDS]
        self._importable = {offer.key: offer for offer in self.import_offers}

    def clean(self) -> dict[str, Any]:
        # Fill what the import answers before the consent checks (the age gate) read it.
        chosen = set(self.cleaned_data.get(IMPORT_FIELDS) or [])
        for key in _ANSWERED_BY_IMPORT:
            if key not in self.fields or key not in self._importable:
                continue
            typed, offer = self.cleaned_data.get(key), self._importable[key]
            if key in chosen and typed and typed != offer.value:
                self.add_error(
                    key,
                    gettext("This differs from what you asked us to copy (%(value)s): untick the copy or correct it.")
                    % {"value": offer.shown},
                )
            elif key in chosen:
                self.cleaned_data[key] = offer.value
        return super().clean()

    def declared_profile_values(self) -> dict[str, Any]:
        """What the person typed, less what they let us copy: the copies are stored with source
        "social" by the import (the account adapter's `save_consents` would store them as typed)."""
        chosen = set(self.cleaned_data.get(IMPORT_FIELDS) or [])
        return {key: value for key, value in super().declared_profile_values().items() if key not in chosen}

    def save(self, request: HttpRequest) -> Any:
        # The account, its consents and the imported values are created together or not at all.
        with transaction.atomic():
            return super().save(request)
