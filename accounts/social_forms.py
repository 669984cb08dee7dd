"""The social sign-up screen: allauth's form plus, per profile field, whether to import what the
provider sent. Nothing is ticked in advance (DESIGN.md invariant 6: least data in)."""

from typing import Any

from allauth.socialaccount.forms import SignupForm
from django import forms
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.social import ImportOffer, social_import_offers


class SocialSignupForm(SignupForm):
    import_fields = forms.MultipleChoiceField(
        label=_("Copy from your account there"),
        help_text=_("Only what you tick is copied into your profile. You can change or delete it later."),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.import_offers: list[ImportOffer] = social_import_offers(self.sociallogin)
        field = self.fields["import_fields"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(offer.key, f"{offer.label}: {offer.shown}") for offer in self.import_offers]
        if not self.import_offers:
            del self.fields["import_fields"]

    def save(self, request: HttpRequest) -> Any:
        # The account, its consents and the imported values are created together or not at all.
        with transaction.atomic():
            return super().save(request)
