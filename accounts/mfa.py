"""Mandatory MFA for staff (issue 6), and what a signed-in session may store about its device.

A staff account carries powers over everyone's data, so it may use them only from a session that
passed a second factor: the account must have an authenticator (TOTP app or WebAuthn key) and this
session must have used one (allauth records each authentication step in the session; a password
alone, an admin login form or a session from before MFA was set up does not count). Without that,
the admin redirects to MFA setup or verification and the API answers 403 `mfa_required`.

Tests that force a user in with DRF's `force_authenticate` skip authentication altogether, and so
this check with it; `tests/conftest.py` gives test staff an authenticator and an MFA session.
"""

import enum
import json
import logging
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlencode

from allauth.account.authentication import get_authentication_records
from allauth.headless.contrib.rest_framework.authentication import XSessionTokenAuthentication
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.contrib import messages
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.contrib.django_allauth import XSessionTokenAuthenticationScheme
from rest_framework.request import Request

from consent.services import DEVICE_LABELS, user_agent_summary
from vault import crypto, keys
from vault.authentication import ApiSessionAuthentication
from vault.errors import ApplicationError, ErrorKind
from vault.keys import VaultError
from vault.schema import ApiSessionScheme

logger = logging.getLogger(__name__)
# Factors that count: a recovery code is a fallback for them, not a factor one can set up alone.
_FACTORS = [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]


class StaffMfa(enum.Enum):
    NOT_STAFF = "not_staff"
    SATISFIED = "satisfied"
    NEEDS_SETUP = "needs_setup"  # the account has no authenticator yet
    NEEDS_VERIFICATION = "needs_verification"  # it has one, but this session did not use it


def session_used_mfa(user: Any, session: SessionBase) -> bool:
    """Whether this session's sign-in (or a later re-authentication) passed a second factor."""
    records = get_authentication_records(cast(HttpRequest, SimpleNamespace(session=session)), user)
    return any(record.get("method") == "mfa" for record in records)


def staff_mfa_state(user: Any, session: SessionBase | None) -> StaffMfa:
    if not getattr(user, "is_authenticated", False) or not user.is_staff:
        return StaffMfa.NOT_STAFF
    if not is_mfa_enabled(user, _FACTORS):
        return StaffMfa.NEEDS_SETUP
    if session is None or not session_used_mfa(user, session):
        return StaffMfa.NEEDS_VERIFICATION
    return StaffMfa.SATISFIED


class StaffMfaMiddleware:
    """Keeps staff sessions without MFA out of the admin: the admin's own login form (password
    only) goes to allauth's login, which asks for the second factor."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> HttpResponse | None:
        match = request.resolver_match
        if match is None or "admin" not in match.namespaces:
            return None
        if match.url_name == "login":
            target = request.GET.get("next") or reverse("admin:index")
            return HttpResponseRedirect(f"{reverse('account_login')}?{urlencode({'next': target})}")
        state = staff_mfa_state(request.user, getattr(request, "session", None))
        if state is StaffMfa.NEEDS_SETUP:
            # The portal's security page says why, and links to allauth's setup pages.
            messages.warning(request, _("Staff accounts need two-factor authentication: set it up to continue."))
            return HttpResponseRedirect(reverse("portal:security"))
        if state is StaffMfa.NEEDS_VERIFICATION:
            # allauth's page asks for the code and explains itself; then back to where they were.
            return HttpResponseRedirect(f"{reverse('mfa_reauthenticate')}?{urlencode({'next': request.path})}")
        return None


class MfaRequired(ApplicationError):
    kind = ErrorKind.FORBIDDEN
    code = "mfa_required"
    message = "Staff accounts must sign in with two-factor authentication to use the API."


def _refuse_staff_without_mfa(result: tuple[Any, Any] | None, session: SessionBase | None) -> None:
    if result is not None and staff_mfa_state(result[0], session) in (
        StaffMfa.NEEDS_SETUP,
        StaffMfa.NEEDS_VERIFICATION,
    ):
        raise MfaRequired()


class StaffMfaSessionAuthentication(ApiSessionAuthentication):
    """The browser session, refused for staff whose session did not pass MFA."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        _refuse_staff_without_mfa(result, getattr(request._request, "session", None))
        return result


class StaffMfaTokenAuthentication(XSessionTokenAuthentication):
    """allauth headless's X-Session-Token: the token names a session, which records its MFA."""

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        _refuse_staff_without_mfa(result, result[1] if result is not None else None)
        return result


# --- What a session row may hold (allauth.usersessions) -----------------------------------------
# DESIGN.md invariant 1: no IP address or user agent in plaintext at rest. The person's list of
# sessions needs only enough to recognise a device, so the row keeps "Firefox on Android" (the
# reduction consent's evidence uses too) and the unspecified address instead of the real ones.
UNSPECIFIED_IP = "0.0.0.0"  # noqa: S104 (a stored placeholder, not a bind address)


def usersession_minimize(sender: Any, instance: Any, **kwargs: Any) -> None:
    """pre_save of allauth's UserSession: keep the device summary, drop the address."""
    instance.ip = UNSPECIFIED_IP
    if instance.user_agent and instance.user_agent not in DEVICE_LABELS:  # not reduced yet
        instance.user_agent = user_agent_summary(instance.user_agent).device


def usersession_record(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """Django's `user_logged_in`: list every signed-in session, not only those allauth's own
    login flows record (the admin's login form, `Client.force_login`), so the person sees each
    device and erasing them (accounts/services.py) finds each session by its key."""
    from allauth.usersessions.models import UserSession

    session = getattr(request, "session", None)
    if request is None or session is None or getattr(user, "pk", None) is None:
        return
    if not session.session_key:
        session.save()
    user_agent = request.META.get("HTTP_USER_AGENT", "")[: UserSession._meta.get_field("user_agent").max_length]
    UserSession.objects.get_or_create(
        session_key=session.session_key, defaults={"user": user, "ip": UNSPECIFIED_IP, "user_agent": user_agent}
    )


# --- OpenAPI: the same schemes as the classes these extend ---------------------------------------
class StaffMfaSessionScheme(ApiSessionScheme):
    target_class = "accounts.mfa.StaffMfaSessionAuthentication"


class StaffMfaTokenScheme(XSessionTokenAuthenticationScheme):
    target_class = "accounts.mfa.StaffMfaTokenAuthentication"


# --- MFA secrets sealed at rest ------------------------------------------------------------------
# allauth keeps each TOTP secret and recovery-code seed in `Authenticator.data`; whoever reads
# them can mint a person's codes. allauth passes them through its adapter's encrypt/decrypt
# hooks, which seal them here under a key of their own wrapped by the KEK, so a copy of the
# database alone yields none. (The hooks are given no user, so a sealed secret is not bound to
# its row: someone able to write the table could copy their own secret onto another account,
# which needs that account's password too and is a lesser power than writing the table.)
SEALED_SECRET_PREFIX = "vault-sealed:"  # noqa: S105 (a marker, not a secret)
_SECRET_CONTEXT = keys.associated_data("vault-mfa-secret/1")


def mfa_secret_seal(secret: str) -> str:
    envelope = crypto.encrypt_standalone(secret.encode(), context=_SECRET_CONTEXT)
    return SEALED_SECRET_PREFIX + json.dumps(envelope, separators=(",", ":"))


def mfa_secret_unseal(stored: str) -> str:
    """Raises `DecryptionFailed` for anything else than a sealed secret: a plaintext secret
    written into the table is refused, not used (accepting one would let whoever wrote it
    choose the codes)."""
    if not stored.startswith(SEALED_SECRET_PREFIX):
        raise crypto.DecryptionFailed("An MFA secret is not sealed.")
    try:
        envelope = _envelope(stored)
    except ValueError:
        raise crypto.DecryptionFailed("A sealed MFA secret is damaged.") from None
    return crypto.decrypt_standalone(envelope, context=_SECRET_CONTEXT).decode()


def _sealed_secrets(data: dict[str, Any]) -> list[tuple[str, int | None, str]]:
    """(key, index in a list or None, value) of each sealed secret in an authenticator's data."""
    found: list[tuple[str, int | None, str]] = []
    for name in ("secret", "seed"):
        if isinstance(data.get(name), str) and data[name].startswith(SEALED_SECRET_PREFIX):
            found.append((name, None, data[name]))
    for index, code in enumerate(data.get("migrated_codes") or []):  # allauth's older recovery codes
        if isinstance(code, str) and code.startswith(SEALED_SECRET_PREFIX):
            found.append(("migrated_codes", index, code))
    return found


def _envelope(stored: str) -> dict[str, str]:
    envelope = json.loads(stored.removeprefix(SEALED_SECRET_PREFIX))
    if not isinstance(envelope, dict):
        raise ValueError("not an envelope")
    return cast(dict[str, str], envelope)


def _resealed(stored: str) -> str | None:
    """The sealed secret with its key rewrapped under the active KEK, or None if it already is."""
    envelope = crypto.standalone_rewrap(_envelope(stored), context=_SECRET_CONTEXT)
    return None if envelope is None else SEALED_SECRET_PREFIX + json.dumps(envelope, separators=(",", ":"))


@receiver(crypto.standalone_rewrap_requested, dispatch_uid="accounts.mfa_secrets_rewrap")
def mfa_secrets_rewrap(sender: Any, **kwargs: Any) -> int:
    """At KEK rotation: rewrap each MFA secret's key under the active KEK; returns how many.

    Each authenticator is locked while its secrets are rewritten: allauth saves a used recovery
    code under the same lock, and writing back a copy read before it would make that code usable
    again. A secret that cannot be rewrapped (damaged, or under a KEK already gone) is left as it
    is and logged by authenticator id; the others go on."""
    done = 0
    ids = Authenticator.objects.exclude(type=Authenticator.Type.WEBAUTHN).values_list("pk", flat=True)
    for pk in list(ids):
        with transaction.atomic():
            authenticator = Authenticator.objects.select_for_update().filter(pk=pk).first()
            if authenticator is None:
                continue
            data = dict(authenticator.data)
            changed = 0
            for name, index, stored in _sealed_secrets(data):
                try:
                    resealed = _resealed(stored)
                except (VaultError, ValueError, KeyError, TypeError):
                    logger.warning("MFA secret of authenticator %s could not be rewrapped; left as it is", pk)
                    continue
                if resealed is None:
                    continue
                if index is None:
                    data[name] = resealed
                else:  # a copy: `data` is shallow, and the loaded list must not change under it
                    data[name] = list(data[name])
                    data[name][index] = resealed
                changed += 1
            if changed:
                authenticator.data = data
                authenticator.save(update_fields=["data"])
                done += changed
    return done


@receiver(crypto.standalone_count_requested, dispatch_uid="accounts.mfa_secrets_by_kek")
def mfa_secrets_by_kek(sender: Any, **kwargs: Any) -> dict[str, int]:
    """{KEK id: how many MFA secrets it wraps}; damaged ones count as "unreadable"."""
    counts: dict[str, int] = {}
    for data in Authenticator.objects.exclude(type=Authenticator.Type.WEBAUTHN).values_list("data", flat=True):
        for *_where, stored in _sealed_secrets(data):
            try:
                kek_id = str(_envelope(stored)["kek"])
            except (ValueError, KeyError):
                kek_id = "unreadable"
            counts[kek_id] = counts.get(kek_id, 0) + 1
    return counts


class MfaAdapter(DefaultMFAAdapter):
    def encrypt(self, text: str) -> str:
        return mfa_secret_seal(text)

    def decrypt(self, encrypted_text: str) -> str:
        return mfa_secret_unseal(encrypted_text)
