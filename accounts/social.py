"""Social login under the vault's rules (DESIGN.md invariants 1 and 6).

Two things django-allauth would otherwise do are changed here:

* **Nothing the provider sent stays in plaintext.** allauth keeps the access and refresh token in
  `SocialToken.token` / `token_secret` and the provider's profile response in
  `SocialAccount.extra_data`. Signal handlers take those values off the instance just before
  every save (whoever saves: sign-up, login, connecting another provider, the admin) and seal
  them under the person's "tokens" key (`SealedSocialToken`, `SealedSocialAccountData`), so the
  columns are written empty. The values stay on the in-memory instance for the rest of the
  request. Reading them back (`social_account_read`) passes the rows to the gate, which
  unseals them (`profiles.gate.social_account_unseal`: purpose checked, audited).
* **Provider data becomes profile data only with the person's agreement.** Social sign-up always
  shows a form (`SOCIALACCOUNT_AUTO_SIGNUP = False`) that offers, per profile field, the value
  the provider gave; only the ticked ones are written, with source "social" and the provider's
  id as source name. A claim that cannot be used (longer than the field allows, malformed) is
  shown with the reason, not dropped without a word.

A provider that is down, slow or answers nonsense gives the friendly error page (502) and one
log line without personal data; an OpenID Connect login is bound to its authorization request
by a nonce (accounts/social_oidc.py).
"""

import datetime
import json
import logging
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import requests
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter, get_adapter
from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.models import SocialAccount, SocialLogin, SocialToken
from allauth.socialaccount.providers import registry
from allauth.socialaccount.providers.base.constants import AuthError
from allauth.socialaccount.signals import social_account_removed
from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_countries import countries

from accounts.models import SealedSocialAccountData, SealedSocialToken
from accounts.social_oidc import (
    PROVIDER_FAILURES,
    IdTokenNonceMismatch,
    oidc_nonce_check,
    oidc_provider,
    provider_failure_summary,
)
from profiles.errors import ProfileError, ValueTooLong
from profiles.gate import (
    ACCOUNT_PURPOSE,
    RIGHTS_PURPOSE,
    Actor,
    SocialAccountData,
    profile_write,
    social_account_unseal,
    social_pending_unseal,
)
from profiles.models import FieldDefinition, Source
from profiles.services import profile_source_purge
from profiles.types import value_clean
from vault import crypto, keys
from vault.audit import audit_record
from vault.fields import seal
from vault.keys import VaultError
from vault.models import AuditActorType

logger = logging.getLogger(__name__)

_ACTOR = "social-login"


# --- Sealing what allauth saves -------------------------------------------------------------------
@receiver(pre_save, sender=SocialAccount, dispatch_uid="accounts.social.take_extra_data")
def _take_extra_data(sender: Any, instance: SocialAccount, raw: bool = False, **kwargs: Any) -> None:
    if raw or not instance.extra_data:
        return
    instance._vault_extra_data = instance.extra_data
    instance.extra_data = {}


@receiver(post_save, sender=SocialAccount, dispatch_uid="accounts.social.seal_extra_data")
def _seal_extra_data(sender: Any, instance: SocialAccount, raw: bool = False, **kwargs: Any) -> None:
    data = instance.__dict__.pop("_vault_extra_data", None)
    if raw or data is None:
        return
    social_account_data_seal(account=instance, extra_data=data)
    instance.extra_data = data  # this request may still show it (allauth's messages and mails)


@receiver(pre_save, sender=SocialToken, dispatch_uid="accounts.social.take_token")
def _take_token(sender: Any, instance: SocialToken, raw: bool = False, **kwargs: Any) -> None:
    if raw or not (instance.token or instance.token_secret):
        return
    instance._vault_token = (instance.token, instance.token_secret)
    instance.token, instance.token_secret = "", ""


@receiver(post_save, sender=SocialToken, dispatch_uid="accounts.social.seal_token")
def _seal_token(sender: Any, instance: SocialToken, raw: bool = False, **kwargs: Any) -> None:
    taken = instance.__dict__.pop("_vault_token", None)
    if raw or taken is None:
        return
    social_token_seal(token=instance, access_token=taken[0], refresh_token=taken[1])
    instance.token, instance.token_secret = taken


@receiver(social_account_removed, dispatch_uid="accounts.social.purge_on_disconnect")
def _purge_on_disconnect(sender: Any, request: HttpRequest, socialaccount: SocialAccount, **kwargs: Any) -> None:
    """Disconnecting a provider takes away what it brought (DESIGN.md invariant 6): the values it
    filled in and its documents, unless another link to the same provider remains."""
    if SocialAccount.objects.filter(user_id=socialaccount.user_id, provider=socialaccount.provider).exists():
        return
    profile_source_purge(
        subject_id=socialaccount.user_id,
        source=Source.SOCIAL,
        source_name=socialaccount.provider[:64],
        actor=Actor.person(socialaccount.user_id),
    )


def social_account_data_seal(*, account: SocialAccount, extra_data: dict[str, Any]) -> None:
    """Keep the provider's profile response of `account` sealed (replacing the earlier one)."""
    with transaction.atomic():
        row = SealedSocialAccountData.objects.select_for_update().filter(account_id=account.pk).first()
        if row is None:
            row = SealedSocialAccountData(id=uuid.uuid4(), account_id=account.pk)
        row.subject_id = account.user_id
        seal(row, "extra_data", extra_data)
        row.save()
        _audit(account.user_id, "social.data_sealed", ["social.extra_data"])


def social_token_seal(*, token: SocialToken, access_token: str, refresh_token: str) -> None:
    """Keep a provider token sealed. A refresh that brings no new refresh token keeps the old
    one (most OAuth2 providers send it once), as allauth does with its own column."""
    subject_id = SocialAccount.objects.filter(pk=token.account_id).values_list("user_id", flat=True).get()
    with transaction.atomic():
        row = SealedSocialToken.objects.select_for_update().filter(token_id=token.pk).first()
        if row is None:
            row = SealedSocialToken(id=uuid.uuid4(), token_id=token.pk)
        if row.subject_id != subject_id:
            row.subject_id, row.refresh_token = subject_id, None
        seal(row, "access_token", access_token)
        if refresh_token:
            seal(row, "refresh_token", refresh_token)
        row.save()
        _audit(subject_id, "social.token_sealed", ["social.access_token", "social.refresh_token"])


def social_account_read(*, account_id: int, purpose: str, actor: Actor) -> SocialAccountData:
    """A linked social account's provider answer and tokens, for account management (a token
    refresh, a call to the provider) or the person's own rights: the sealed rows are read here
    and unsealed by the gate, which checks the purpose and writes the audit entry."""
    account = SocialAccount.objects.get(pk=account_id)
    subject_id = crypto.as_subject_id(account.user_id)
    tokens = SealedSocialToken.objects.filter(subject_id=subject_id, token__account_id=account.pk)
    return social_account_unseal(
        subject_id=subject_id,
        provider=account.provider,
        data=SealedSocialAccountData.objects.filter(account_id=account.pk, subject_id=subject_id).first(),
        tokens=list(tokens.select_related("token")),
        purpose=purpose,
        actor=actor,
    )


def _audit(subject_id: uuid.UUID, action: str, fields: list[str]) -> None:
    audit_record(
        actor_type=AuditActorType.SYSTEM,
        actor_id=_ACTOR,
        action=action,
        purpose=ACCOUNT_PURPOSE,
        fields=fields,
        subject_id=subject_id,
    )


# --- What a provider's answer can fill in, field by field --------------------------------------
@dataclass(frozen=True)
class ImportOffer:
    """A value the provider gave for a profile field, offered to the person at sign-up; or, with
    a `problem`, one that cannot be copied, shown with the reason (and `value` None)."""

    key: str
    label: str
    value: Any
    shown: str
    problem: str = ""

    @property
    def importable(self) -> bool:
        return not self.problem


_SHOWN_MAX = 60  # characters of an unusable value shown on the screen


def _shown_raw(raw: Any) -> str:
    text = ", ".join(map(str, raw)) if isinstance(raw, list) else str(raw)
    return text if len(text) <= _SHOWN_MAX else f"{text[: _SHOWN_MAX - 1]}…"


def _problem(definition: FieldDefinition, raw: Any, error: ProfileError) -> str:
    """Why the provider's value cannot be copied, in words for the sign-up screen."""
    if isinstance(error, ValueTooLong):
        if definition.max_length and isinstance(raw, str) and len(raw.strip()) > definition.max_length:
            return gettext("longer than this field allows (%(count)d characters)") % {"count": definition.max_length}
        return gettext("longer than this field allows")
    return gettext("not in a form this field accepts")


def _claims(extra_data: dict[str, Any]) -> dict[str, Any]:
    """The claims themselves: OpenID Connect keeps userinfo and the ID token apart."""
    picked = extra_data.get("userinfo") or extra_data.get("id_token")
    return picked if isinstance(picked, dict) else extra_data


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _birth_date(claims: dict[str, Any], common: dict[str, Any]) -> Any:
    if birthdate := _text(claims.get("birthdate")):  # OpenID Connect: YYYY-MM-DD
        return birthdate
    if birthday := _text(claims.get("birthday")):  # Facebook: MM/DD/YYYY (MM/DD without consent to the year)
        try:
            return datetime.datetime.strptime(birthday, "%m/%d/%Y").date()
        except ValueError:
            return None
    return None


def _place(claims: dict[str, Any]) -> tuple[str, str]:
    """(city, country) as the provider told them."""
    address = claims.get("address")
    if isinstance(address, dict):  # OpenID Connect's address claim
        return _text(address.get("locality")), _text(address.get("country"))
    location = claims.get("location")
    if isinstance(location, dict):  # Facebook: {"name": "Amsterdam, Netherlands"}
        location = location.get("name")
    city, _, country = _text(location).partition(",")  # GitHub: free text
    return city.strip(), country.strip()


def _country(claims: dict[str, Any], common: dict[str, Any]) -> Any:
    country = _place(claims)[1]
    if not country:
        return None
    return country.upper() if country.upper() in countries else countries.by_name(country) or None


def _interests(claims: dict[str, Any], common: dict[str, Any]) -> Any:
    likes = claims.get("likes")
    names = [
        f"{_text(like.get('name'))} {_text(like.get('category'))}".lower()
        for like in (likes.get("data", []) if isinstance(likes, dict) else [])
        if isinstance(like, dict)
    ]
    return names or None  # matched against the field's choices below


def _name_part(index: int) -> Callable[[dict[str, Any], dict[str, Any]], Any]:
    key = ("first_name", "last_name")[index]

    def extract(claims: dict[str, Any], common: dict[str, Any]) -> Any:
        if value := _text(common.get(key)):
            return value
        first, _, rest = _text(common.get("name")).partition(" ")
        return (first, rest)[index] or None

    return extract


# Field key, what the person is asked about, how to find it in the provider's answer.
IMPORTS: list[tuple[str, Any, Callable[[dict[str, Any], dict[str, Any]], Any]]] = [
    ("given_name", _("Your first name"), _name_part(0)),
    ("family_name", _("Your last name"), _name_part(1)),
    ("birth_date", _("Your birthday"), _birth_date),
    ("country", _("Your country (from your location)"), _country),
    ("city", _("Your city (from your location)"), lambda claims, common: _place(claims)[0] or None),
    ("interests", _("Your interests (from your likes)"), _interests),
]


def social_import_offers(sociallogin: SocialLogin) -> list[ImportOffer]:
    """What the provider's answer holds for the profile, one offer per field. A value the field
    would refuse (too long, malformed) comes with its `problem` instead of a value: it is shown
    as not importable, rather than failing the sign-up or vanishing without a word."""
    extra_data = sociallogin.account.extra_data or {}
    if not isinstance(extra_data, dict):
        return []
    claims = _claims(extra_data)
    try:
        common = sociallogin.account.get_provider().extract_common_fields(extra_data) or {}
    except Exception:  # a provider's parser meeting a malformed answer
        logger.warning("Provider %s: unreadable profile response", sociallogin.account.provider)
        common = {}
    definitions = {
        d.key: d
        for d in FieldDefinition.objects.filter(key__in=[key for key, _, _ in IMPORTS], deprecated_at__isnull=True)
        if Source.SOCIAL in d.allowed_sources and d.person_can_edit
    }
    offers = []
    for key, label, extract in IMPORTS:
        definition = definitions.get(key)
        if definition is None:
            continue
        try:
            raw = extract(claims, common)
        except (AttributeError, TypeError, ValueError):
            raw = None
        if key == "interests" and raw:
            raw = [choice for choice in definition.choices if any(choice in like for like in raw)] or None
        if raw is None:
            continue
        try:
            value = value_clean(definition, raw)
        except ProfileError as error:
            offers.append(ImportOffer(key, str(label), None, _shown_raw(raw), _problem(definition, raw, error)))
            continue
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        offers.append(ImportOffer(key, str(label), value, shown))
    return offers


def social_claims_import(
    *, subject_id: uuid.UUID, provider: str, offers: list[ImportOffer], keys: list[str]
) -> list[str]:
    """Write the offered values the person chose (`keys`) to their profile; returns the keys."""
    values = {offer.key: offer.value for offer in offers if offer.key in keys and offer.importable}
    if not values:
        return []
    return profile_write(
        subject_id=subject_id,
        values=values,
        source=Source.SOCIAL,
        source_name=provider[:64],
        purpose=RIGHTS_PURPOSE,  # the person's own choice, on the sign-up screen
        actor=Actor.person(subject_id),
    )


ERROR_TEMPLATE = "socialaccount/authentication_error.html"
PROVIDER_FAILED = "provider_failed"  # the error page's code for a provider that failed us
PROVIDER_FAILED_STATUS = 502  # Bad Gateway: the provider, not the person, is what went wrong


def _raise_for_server_error(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """A 5xx is never an answer (allauth reads some as a refusal, some as a body to parse)."""
    if response.status_code >= 500:
        response.raise_for_status()


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """Social sign-up creates everything or nothing: the account, its sealed provider data,
    consents and the imported profile values commit together."""

    def is_auto_signup_allowed(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return False  # always through the consent screen, whatever the settings say

    def get_requests_session(self) -> requests.Session:
        """allauth's session for every call to a provider (discovery, token, userinfo, keys),
        with its timeout (SOCIALACCOUNT_REQUESTS_TIMEOUT); a 5xx answer raises, so that it
        counts as the provider failing."""
        session = super().get_requests_session()
        session.hooks["response"].append(_raise_for_server_error)
        return session

    def get_provider(self, request: HttpRequest, provider: Any, client_id: Any = None) -> Any:
        """allauth's OpenID Connect provider with a nonce (accounts/social_oidc.py)."""
        return oidc_provider(super().get_provider(request, provider, client_id))

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        """Before allauth looks the login up or stores anything: an OpenID Connect ID token must
        carry the nonce of this login's authorization request (accounts/social_oidc.py)."""
        try:
            oidc_nonce_check(request, sociallogin)
        except IdTokenNonceMismatch as error:
            response = render_authentication_error(
                request,
                sociallogin.provider,
                error=AuthError.UNKNOWN,
                exception=error,
                extra_context={"state": sociallogin.state},
            )
            raise ImmediateHttpResponse(response) from None
        super().pre_social_login(request, sociallogin)

    def on_authentication_error(
        self,
        request: HttpRequest,
        provider: Any,
        error: Any = None,
        exception: Any = None,
        extra_context: Any = None,
    ) -> None:
        """Every failed social login passes here (allauth's own refusals, and the failures the
        provider subclass and the middleware hand over): one log line, without the exception's
        text (it can quote a provider's answer, a code or a token) or any query string. A
        provider that failed (unreachable, timed out, 5xx, an answer that is not the expected
        JSON) gets the error page with 502; a refusal keeps allauth's 401. Headless flows keep
        allauth's handling (a redirect back to the app with the error)."""
        state = (extra_context or {}).get("state") or {}
        failed = isinstance(exception, PROVIDER_FAILURES)
        logger.log(
            logging.INFO if error == AuthError.CANCELLED else logging.WARNING,
            "Social login with %s failed: %s, %s",
            getattr(provider, "sub_id", provider) or "-",
            PROVIDER_FAILED if failed else (error or AuthError.UNKNOWN),
            provider_failure_summary(exception),
        )
        if failed and not (isinstance(state, dict) and state.get("headless")):
            context = {"auth_error": {"provider": provider, "code": PROVIDER_FAILED}}
            raise ImmediateHttpResponse(render(request, ERROR_TEMPLATE, context, status=PROVIDER_FAILED_STATUS))
        super().on_authentication_error(request, provider, error, exception, extra_context)

    def save_user(self, request: HttpRequest, sociallogin: SocialLogin, form: Any = None) -> Any:
        with transaction.atomic():
            user = super().save_user(request, sociallogin, form)
            if form is not None and hasattr(form, "import_offers"):
                social_claims_import(
                    subject_id=user.pk,
                    provider=sociallogin.account.provider,
                    offers=form.import_offers,
                    keys=form.cleaned_data.get("import_fields") or [],
                )
        return user


# --- Pending sign-in state: sealed in the session ------------------------------------------------
# allauth keeps the whole social login (tokens, the provider's answer, the e-mail address) in the
# session while the person reads the sign-up screen, a serialized request or social login while
# it asks someone to confirm their password, and the new TOTP secret while an authenticator app
# is being set up; the session table only signs its data. Between requests these are kept sealed
# under a fresh key that only the KEK can unwrap, unsealed (through the gate) for the requests
# that need them, and gone once the flow ends.
PENDING_SESSION_KEY = "socialaccount_sociallogin"  # allauth's, for a social sign-up
TOTP_SETUP_SESSION_KEY = "mfa.totp.secret"  # allauth's, while a TOTP app is being set up
SEALED_SESSION_KEYS = {
    PENDING_SESSION_KEY: "vault_sealed_sociallogin",
    "account_reauthentication_state": "vault_sealed_reauthentication",  # allauth's, for reauthentication
    TOTP_SETUP_SESSION_KEY: "vault_sealed_totp_setup",
}
# What the audit log calls each when it is unsealed.
SEALED_SESSION_FIELDS = {
    PENDING_SESSION_KEY: "social.pending_signup",
    "account_reauthentication_state": "account.reauthentication_state",
    TOTP_SETUP_SESSION_KEY: "mfa.totp_setup_secret",
}
SEALED_SESSION_KEY = SEALED_SESSION_KEYS[PENDING_SESSION_KEY]
PENDING_CONTEXT = "vault-pending-social-login/1"


def social_pending_seal(data: Any, *, name: str) -> dict[str, str]:
    """`data` encrypted under a key of its own, kept wrapped by the KEK (no person may exist yet
    to own a data key), bound to the session key `name` it is stored under."""
    plaintext = json.dumps(data, separators=(",", ":")).encode()
    return crypto.encrypt_standalone(plaintext, context=keys.associated_data(PENDING_CONTEXT, name))


def session_pending_seal(session: dict[str, Any]) -> dict[str, Any]:
    """The session as stored: pending sign-in state sealed (the session backend calls this)."""
    if not any(name in session for name in SEALED_SESSION_KEYS):
        return session
    stored = dict(session)
    for name, sealed_name in SEALED_SESSION_KEYS.items():
        if name in stored:
            stored[sealed_name] = social_pending_seal(stored.pop(name), name=name)
    return stored


def session_pending_unseal(stored: dict[str, Any]) -> dict[str, Any]:
    """The session as used: pending sign-in state unsealed (through the gate, audited)."""
    if not any(sealed_name in stored for sealed_name in SEALED_SESSION_KEYS.values()):
        return stored
    session = dict(stored)
    for name, sealed_name in SEALED_SESSION_KEYS.items():
        if sealed_name not in session:
            continue
        sealed = session.pop(sealed_name)
        try:
            session[name] = social_pending_unseal(
                sealed=sealed, context=PENDING_CONTEXT, name=name, field=SEALED_SESSION_FIELDS[name]
            )
        except (VaultError, ValueError, TypeError):
            # A retired KEK or a damaged value: the person starts that step again.
            logger.warning("Pending state %s could not be unsealed; dropped", name)
    return session


class SocialLoginMiddleware:
    """Holds provider logins to the configured scopes, and turns a provider failure that escapes
    allauth's views into the friendly error page. (Pending sign-in state is sealed by the session
    backend, `accounts.sessions`.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> None:
        """allauth lets a `scope` parameter add scopes to a provider login; the configured,
        minimal scopes are all a login may ask for."""
        match = request.resolver_match
        if match is not None and (match.url_name or "").endswith("_login"):
            for params in ("GET", "POST"):
                if "scope" in getattr(request, params):
                    copy = getattr(request, params).copy()
                    copy.pop("scope")
                    setattr(request, params, copy)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """allauth's callback view catches network errors of the token and userinfo calls, but
        not those raised before (the OpenID Connect discovery document, fetched again for the
        callback) nor an answer of the wrong shape (userinfo without a subject, a list), which
        raises deep inside it; a provider's sign-in start may fail the same way. Nothing was
        stored by then: accounts are created only after the sign-up form. The error goes
        through allauth's error page, and so through the adapter's `on_authentication_error`
        (the log line, the status)."""
        match = request.resolver_match
        if match is None or not isinstance(exception, PROVIDER_FAILURES):
            return None
        provider_class, _, step = (match.url_name or "").rpartition("_")
        if step not in ("login", "callback") or registry.get_class(provider_class) is None:
            return None  # not a provider's own view (`account_login` is allauth's password login)
        provider: Any = None
        with suppress(Exception):  # a provider gone from the settings: the page names none
            provider = get_adapter(request).get_provider(request, match.kwargs.get("provider_id") or provider_class)
        return render_authentication_error(request, provider, exception=exception)
