"""The social sign-up screen: allauth's form plus, per profile field, whether to import what the
provider sent. Nothing is ticked in advance (DESIGN.md invariant 6: least data in).

The consent choices, date of birth and country are those of the e-mail sign-up
(`ConsentChoicesMixin`, which allauth also puts under this form as `ACCOUNT_SIGNUP_FORM_CLASS`;
named here so the screen keeps asking them whatever that setting says), recorded by the account
adapter in the same transaction as the account. A person who lets us copy their birthday or country from the provider
need not type it as well (the age gate reads the copy); one who types a different date than the
one they let us copy is asked which is right.

What the provider sent that cannot be used is said, not dropped: a claim the profile field
would refuse is listed with the reason, and an e-mail address we cannot send mail to (one with
non-ASCII characters before the @: Django's SMTP backend refuses such a recipient and does not
speak SMTPUTF8) is named with a request for another address.
"""

from typing import Any

from allauth.socialaccount.forms import DisconnectForm, SignupForm
from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.social import ImportOffer, social_import_offers, social_imported_fields, social_values_keep
from portal.forms import ConsentChoicesMixin
from profiles.gate import Actor

IMPORT_FIELDS = "import_fields"
NON_ASCII_LOCAL_PART = _(
    "We cannot send mail to an address with non-ASCII characters before the @; please use another address."
)


def has_non_ascii_local_part(address: str) -> bool:
    local_part, at, _domain = address.rpartition("@")
    return bool(at) and not local_part.isascii()


def validate_mailable_email(value: str) -> None:
    """Django's e-mail check, saying plainly why an internationalized local part is refused
    (Django's check would only call it invalid). A non-ASCII domain is fine: mail goes to its
    IDNA (xn--) form."""
    if has_non_ascii_local_part(value):
        raise ValidationError(NON_ASCII_LOCAL_PART, code="non_ascii_local_part")
    validate_email(value)


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
        self._explain_unusable_email()
        offers = social_import_offers(self.sociallogin)
        self.import_offers: list[ImportOffer] = [offer for offer in offers if offer.importable]
        self.unusable_offers: list[ImportOffer] = [offer for offer in offers if not offer.importable]
        field = self.fields[IMPORT_FIELDS]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(offer.key, f"{offer.label}: {offer.shown}") for offer in self.import_offers]
        if not self.import_offers:
            del self.fields[IMPORT_FIELDS]
        self._importable = {offer.key: offer for offer in self.import_offers}

    def provider_email(self) -> str:
        """The address the provider gave, usable or not (allauth keeps only usable ones)."""
        for address in self.sociallogin.email_addresses:
            if address.email:
                return str(address.email)
        account = self.sociallogin.account
        try:
            common = account.get_provider().extract_common_fields(account.extra_data or {}) or {}
        except Exception:  # a provider's parser meeting a malformed answer
            return ""
        email = common.get("email")
        return email.strip() if isinstance(email, str) else ""

    def _explain_unusable_email(self) -> None:
        field = self.fields.get("email")
        if field is None:
            return
        field.validators = [validate_mailable_email if check is validate_email else check for check in field.validators]
        initial = str(self.initial.get("email") or "")
        provider_email = initial or self.provider_email()
        if not has_non_ascii_local_part(provider_email):
            return
        self.initial["email"] = ""  # offered, it would only be refused on sending
        explained = gettext(
            "%(provider)s gave us %(address)s, but we cannot send mail to an address with non-ASCII characters "
            "before the @; please use another address."
        ) % {"provider": self.sociallogin.provider.name, "address": provider_email}
        field.help_text = explained
        field.error_messages = {**field.error_messages, "required": explained}

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


KEEP_FIELDS = "keep"


class SocialDisconnectForm(DisconnectForm):
    """allauth's form to remove a connection, plus, per value the provider brought, "keep as my
    own": a ticked value is re-labelled as given by the person (and that choice audited) before
    the connection goes, so the purge of the provider's data leaves it. Choices are
    `<account pk>:<field key>`; only those of the connection being removed may be ticked. The
    page names the fields, never their values."""

    keep = forms.MultipleChoiceField(
        label=_("Keep as my own"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (key, label, keepable) per connection, read without decrypting anything; the page
        # lists them under each connection (the accounts' query is evaluated once, here).
        for account in self.accounts:
            account.imported_fields = social_imported_fields(account=account)
        keep_field: forms.MultipleChoiceField = self.fields[KEEP_FIELDS]
        keep_field.choices = [
            (f"{account.pk}:{key}", label)
            for account in self.accounts
            for key, label, keepable in account.imported_fields
            if keepable
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        account = cleaned.get("account")
        ticked = cleaned.get(KEEP_FIELDS) or []
        if account is not None:
            prefix = f"{account.pk}:"
            if any(not choice.startswith(prefix) for choice in ticked):
                self.add_error(KEEP_FIELDS, _("Tick only values of the connection you remove."))
            cleaned["keep_keys"] = [choice.removeprefix(prefix) for choice in ticked]
        return cleaned

    def save(self) -> None:
        account = self.cleaned_data["account"]
        # One transaction: if allauth asks for re-authentication first, nothing is re-labelled.
        with transaction.atomic():
            social_values_keep(
                account=account, keys=self.cleaned_data["keep_keys"], actor=Actor.person(account.user_id)
            )
            super().save()
