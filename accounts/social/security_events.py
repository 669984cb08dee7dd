"""Security events that providers push to us: OpenID Connect Back-Channel Logout 1.0 (an
identity provider ends a person's session there, and asks us to end ours) and Google's
Cross-Account Protection (RISC: Security Event Tokens, RFC 8417, pushed as in RFC 8935).

Both arrive as signed JWTs from someone who is not signed in here, so nothing is done until the
token has passed every check: signed with a key of the provider's published JWKS (an asymmetric
algorithm that key admits; never `none`, never an HMAC secret), from the provider's issuer, for
one of our client ids, issued recently (`SOCIAL_SECURITY_EVENT_MAX_AGE_SECONDS`, a minute of
clock skew allowed), carrying the `events` claim this receiver expects, and with a `jti` not seen
before. Seen `jti`s are kept in Django's cache (Redis in production) for as long as a token
bearing them could still pass the age check, so a replay is refused and no table is needed.

The JWKS and discovery documents are cached for an hour; a token naming a key id the cached
JWKS lacks makes one refetch (at most one per `KEYS_REFETCH_COOLDOWN` seconds, so tokens with
made-up key ids cannot make us hammer the provider), which is how a provider's key rotation is
picked up.

What an event does: the person is found by their social account (`SocialAccount(provider, uid)`,
uid being the token's `sub`); a logout ends the sessions they signed in to with that provider
(`account_sessions_end`), or, when the token names the provider's session (`sid`), only the
session signed in during it (found by the keyed hash recorded at sign-in, accounts/social/
provider_sessions.py; without a `sub`, the person is found through that record too). Google's
`tokens-revoked` and `account-disabled` also purge the stored tokens of that Google account
(`social_tokens_purge`, audited by field name). An unknown subject gets the same answer as a
known one, so the endpoint tells no one whether an account exists. Log lines name the provider,
the event type and the outcome: never a token or a subject.
"""

import hashlib
import logging
import time
import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import jwt
import requests
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from accounts.models import SealedSocialToken
from accounts.services import account_sessions_end
from accounts.social.provider_sessions import (
    provider_session_forget,
    provider_session_marker,
    provider_session_subject,
)
from profiles.gate import ACCOUNT_PURPOSE
from vault.audit import audit_record
from vault.errors import ApplicationError, ErrorKind
from vault.models import AuditActorType

logger = logging.getLogger("accounts.social")

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
_RISC = "https://schemas.openid.net/secevent/risc/event-type/"
RISC_TOKENS_REVOKED = _RISC + "tokens-revoked"
RISC_ACCOUNT_DISABLED = _RISC + "account-disabled"
RISC_SESSIONS_REVOKED = _RISC + "sessions-revoked"
RISC_VERIFICATION = _RISC + "verification"
GOOGLE = "google"

# Asymmetric algorithms only: an HMAC "key" would be our client secret, and `none` is no signature.
ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
LEEWAY_SECONDS = 60  # clock skew allowed on iat and exp
MAX_TOKEN_BYTES = 16 * 1024  # a logout token or a SET is a few hundred bytes; 16 KiB is generous
HTTP_TIMEOUT = (3.05, 5.0)
DOCUMENT_CACHE_SECONDS = 3600
KEYS_REFETCH_COOLDOWN = 30


class SecurityEventCode(StrEnum):
    MALFORMED = "token_malformed"
    TOO_LARGE = "token_too_large"
    ALGORITHM = "token_algorithm_not_allowed"
    UNKNOWN_KEY = "token_key_unknown"
    SIGNATURE = "token_signature_invalid"
    ISSUER = "token_issuer_invalid"
    AUDIENCE = "token_audience_invalid"
    EXPIRED = "token_expired"
    TOO_OLD = "token_too_old"
    NOT_YET_VALID = "token_not_yet_valid"
    MISSING_CLAIM = "token_claim_missing"
    EVENTS = "token_events_invalid"
    NONCE = "token_has_nonce"
    SUBJECT = "token_subject_missing"
    REPLAYED = "token_replayed"
    PROVIDER_UNKNOWN = "provider_unknown"
    KEYS_UNAVAILABLE = "provider_keys_unavailable"


# RFC 8935, section 2.4: the error codes a SET transmitter understands.
_SET_ERRORS: dict[str, str] = {
    SecurityEventCode.UNKNOWN_KEY: "invalid_key",
    SecurityEventCode.SIGNATURE: "invalid_key",
    SecurityEventCode.ALGORITHM: "invalid_key",
    SecurityEventCode.ISSUER: "invalid_issuer",
    SecurityEventCode.AUDIENCE: "invalid_audience",
}


class SecurityTokenInvalid(ApplicationError):
    """The token failed a check; nothing was changed."""

    kind = ErrorKind.INVALID
    code = SecurityEventCode.MALFORMED
    message = "The token is not a valid security event token."

    @property
    def set_error(self) -> str:
        """This refusal as RFC 8935's `err` code."""
        return _SET_ERRORS.get(self.code, "invalid_request")


class SecurityTokenTooLarge(ApplicationError):
    kind = ErrorKind.TOO_LARGE
    code = SecurityEventCode.TOO_LARGE
    message = f"The token is larger than this receiver accepts ({MAX_TOKEN_BYTES} bytes)."


class SecurityEventProviderUnknown(ApplicationError):
    kind = ErrorKind.NOT_FOUND
    code = SecurityEventCode.PROVIDER_UNKNOWN
    message = "No such provider is configured here."


class ProviderKeysUnavailable(ApplicationError):
    """The provider's discovery document or JWKS could not be had: the token cannot be checked
    now (the provider may deliver it again)."""

    kind = ErrorKind.UNAVAILABLE
    code = SecurityEventCode.KEYS_UNAVAILABLE
    message = "The provider's signing keys could not be fetched; please deliver the token again later."


def _invalid(code: SecurityEventCode, message: str, param: str | None = None) -> SecurityTokenInvalid:
    return SecurityTokenInvalid(message, code=code, param=param)


# --- Documents and keys -------------------------------------------------------------------------
def _cache_key(kind: str, value: str) -> str:
    return f"accounts.security-events.{kind}.{hashlib.sha256(value.encode()).hexdigest()}"


def _document_fetch(url: str) -> dict[str, Any]:
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        logger.warning("Fetching a provider document failed: %s", type(error).__name__)
        raise ProviderKeysUnavailable() from None
    if not isinstance(document, dict):
        raise ProviderKeysUnavailable()
    cache.set(_cache_key("document", url), document, DOCUMENT_CACHE_SECONDS)
    return document


def _document(url: str) -> dict[str, Any]:
    """A provider's JSON document (discovery, RISC configuration, JWKS), cached."""
    cached = cache.get(_cache_key("document", url))
    return cached if isinstance(cached, dict) else _document_fetch(url)


def _document_url(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ProviderKeysUnavailable()
    return value


def _jwk_find(jwks: dict[str, Any], kid: str | None) -> dict[str, Any] | None:
    keys = [
        key
        for key in jwks.get("keys") or []
        if isinstance(key, dict) and key.get("use", "sig") == "sig" and key.get("kty") in ("RSA", "EC", "OKP")
    ]
    if kid is None:
        return keys[0] if len(keys) == 1 else None  # without a kid only an unambiguous key will do
    return next((key for key in keys if key.get("kid") == kid), None)


def _signing_key(*, jwks_uri: str, kid: str | None, algorithm: str) -> jwt.PyJWK:
    jwk = _jwk_find(_document(jwks_uri), kid)
    if jwk is None and cache.add(_cache_key("refetch", jwks_uri), 1, KEYS_REFETCH_COOLDOWN):
        jwk = _jwk_find(_document_fetch(jwks_uri), kid)  # the provider may have rotated its keys
    if jwk is None:
        raise _invalid(SecurityEventCode.UNKNOWN_KEY, "The token is signed with a key the provider does not publish.")
    if jwk.get("alg") not in (None, algorithm):
        raise _invalid(SecurityEventCode.ALGORITHM, "The token's algorithm is not the one its key is published for.")
    try:
        return jwt.PyJWK(jwk, algorithm=algorithm)
    except (jwt.PyJWKError, jwt.InvalidKeyError):  # say, an RS256 header on an EC key
        raise _invalid(SecurityEventCode.ALGORITHM, "The token's algorithm does not fit its key.") from None


# --- Verification -------------------------------------------------------------------------------
def security_token_verify(
    *, token: str, jwks_uri: str, issuer: str, audiences: Sequence[str], param: str
) -> dict[str, Any]:
    """The claims of `token` once its signature, issuer, audience, times, `jti` presence and
    `events` object have passed; raises `SecurityTokenInvalid` (or `ProviderKeysUnavailable`)
    otherwise. The `jti` is not recorded here: see `_jti_claim`."""
    if len(token.encode()) > MAX_TOKEN_BYTES:
        raise SecurityTokenTooLarge(param=param)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise _invalid(SecurityEventCode.MALFORMED, "The token is not a signed JWT.", param) from None
    algorithm, kid = header.get("alg"), header.get("kid")
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise _invalid(SecurityEventCode.ALGORITHM, "The token's signature algorithm is not accepted.", param)
    if kid is not None and not isinstance(kid, str):
        raise _invalid(SecurityEventCode.MALFORMED, "The token's key id is not a string.", param)
    key = _signing_key(jwks_uri=jwks_uri, kid=kid, algorithm=algorithm)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            issuer=issuer,
            audience=list(audiences),
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "iat", "jti"], "strict_aud": False},
        )
    except jwt.InvalidSignatureError:
        raise _invalid(SecurityEventCode.SIGNATURE, "The token's signature does not verify.", param) from None
    except jwt.InvalidIssuerError:
        raise _invalid(SecurityEventCode.ISSUER, "The token is not from this provider.", param) from None
    except jwt.InvalidAudienceError:
        raise _invalid(SecurityEventCode.AUDIENCE, "The token is not meant for this site.", param) from None
    except jwt.ExpiredSignatureError:
        raise _invalid(SecurityEventCode.EXPIRED, "The token has expired.", param) from None
    except jwt.ImmatureSignatureError:
        raise _invalid(SecurityEventCode.NOT_YET_VALID, "The token is dated in the future.", param) from None
    except jwt.MissingRequiredClaimError as error:
        raise _invalid(SecurityEventCode.MISSING_CLAIM, f"The token has no {error.claim} claim.", param) from None
    except jwt.InvalidTokenError:
        raise _invalid(SecurityEventCode.MALFORMED, "The token's claims cannot be read.", param) from None
    if time.time() - claims["iat"] > settings.SOCIAL_SECURITY_EVENT_MAX_AGE_SECONDS + LEEWAY_SECONDS:
        raise _invalid(SecurityEventCode.TOO_OLD, "The token was issued too long ago.", param)
    if not isinstance(claims["jti"], str) or not claims["jti"]:
        raise _invalid(SecurityEventCode.MISSING_CLAIM, "The token's jti is not a string.", param)
    events = claims.get("events")
    if not isinstance(events, dict) or not events or not all(isinstance(value, dict) for value in events.values()):
        raise _invalid(SecurityEventCode.EVENTS, "The token has no events object.", param)
    return claims


def _jti_key(claims: dict[str, Any]) -> str:
    return _cache_key("jti", f"{claims['iss']}\n{claims['jti']}")


def _jti_claim(claims: dict[str, Any], param: str) -> None:
    """Record the token's `jti`, refusing one seen before. Kept as long as a token with it could
    still pass the age check; `cache.add` is atomic in Redis, so two deliveries racing each other
    cannot both pass."""
    lifetime = settings.SOCIAL_SECURITY_EVENT_MAX_AGE_SECONDS + 3 * LEEWAY_SECONDS
    if not cache.add(_jti_key(claims), 1, lifetime):
        raise _invalid(SecurityEventCode.REPLAYED, "This token was already delivered.", param)


def _jti_release(claims: dict[str, Any]) -> None:
    """Forget a `jti` whose token could not be acted on (say, the database failed), so that the
    provider's next delivery of it is not refused as a replay."""
    cache.delete(_jti_key(claims))


def _subject_id(*, provider_id: str, uid: str) -> uuid.UUID | None:
    user_id = SocialAccount.objects.filter(provider=provider_id, uid=uid).values_list("user_id", flat=True).first()
    return user_id if isinstance(user_id, uuid.UUID) else None


# --- OpenID Connect Back-Channel Logout ------------------------------------------------------------
def _oidc_app(provider_id: str) -> SocialApp:
    try:
        app = get_adapter().get_app(None, provider=provider_id)
    except (SocialApp.DoesNotExist, SocialApp.MultipleObjectsReturned):
        raise SecurityEventProviderUnknown() from None
    if app.provider != "openid_connect" or app.provider_id != provider_id:
        raise SecurityEventProviderUnknown()
    return app


def oidc_backchannel_logout(*, provider_id: str, logout_token: str) -> int:
    """Act on a Back-Channel Logout token from the OpenID Connect app `provider_id`. With a `sid`
    (with or without a `sub`), end the one session here that signed in during that provider
    session; with only a `sub`, every session its subject signed in to with that provider.
    Returns how many sessions ended (0 for a subject or provider session we do not know, which
    the caller must answer like any other success)."""
    param = "logout_token"
    app = _oidc_app(provider_id)
    server_url: str = app.settings["server_url"]
    discovery_url = (
        server_url if "/.well-known/" in server_url else server_url.rstrip("/") + "/.well-known/openid-configuration"
    )
    discovery = _document(discovery_url)
    issuer = discovery.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise ProviderKeysUnavailable()
    try:
        claims = security_token_verify(
            token=logout_token,
            jwks_uri=_document_url(discovery, "jwks_uri"),
            issuer=issuer,
            audiences=[app.client_id],
            param=param,
        )
        if BACKCHANNEL_LOGOUT_EVENT not in claims["events"]:
            raise _invalid(SecurityEventCode.EVENTS, "The token is not a logout token.", param)
        if "nonce" in claims:  # an ID token passed off as a logout token (section 2.6, step 5)
            raise _invalid(SecurityEventCode.NONCE, "A logout token must not carry a nonce.", param)
        sub, sid = claims.get("sub"), claims.get("sid")
        sub = sub if isinstance(sub, str) and sub else None
        sid = sid if isinstance(sid, str) and sid else None
        if sub is None and sid is None:
            raise _invalid(SecurityEventCode.SUBJECT, "The token names neither a sub nor a sid.", param)
        _jti_claim(claims, param)
    except SecurityTokenInvalid as error:
        logger.info("Back-channel logout from %s refused: %s", provider_id, error.code)
        raise
    marker = None if sid is None else provider_session_marker(provider_id=provider_id, issuer=issuer, sid=sid)
    try:
        if sub is not None:
            subject_id = _subject_id(provider_id=provider_id, uid=sub)
        else:
            subject_id = provider_session_subject(marker=marker) if marker is not None else None
        ended = (
            0
            if subject_id is None
            else account_sessions_end(subject_id=subject_id, provider=provider_id, provider_session=marker)
        )
    except Exception:
        _jti_release(claims)
        raise
    if marker is not None and ended:
        provider_session_forget(marker=marker)
    logger.info(
        "Back-channel logout from %s%s: %s",
        provider_id,
        "" if sid is None else " (one provider session)",
        "unknown subject" if subject_id is None else f"{ended} session(s) ended",
    )
    return ended


# --- Google Cross-Account Protection (RISC) --------------------------------------------------------
def social_tokens_purge(*, provider_id: str, uid: str, actor_id: str) -> int:
    """Delete the stored tokens of one social account (allauth's `SocialToken` rows and their
    sealed values) and audit it by field name. Returns how many tokens were deleted."""
    account = SocialAccount.objects.filter(provider=provider_id, uid=uid).values_list("pk", "user_id").first()
    if account is None:
        return 0
    account_id, subject_id = account
    with transaction.atomic():
        SealedSocialToken.objects.filter(token__account_id=account_id).delete()
        deleted, _ = SocialToken.objects.filter(account_id=account_id).delete()
        if deleted:
            audit_record(
                actor_type=AuditActorType.SYSTEM,
                actor_id=actor_id,
                action="social.tokens_purged",
                purpose=ACCOUNT_PURPOSE,
                fields=["social.access_token", "social.refresh_token"],
                subject_id=subject_id,
            )
    return deleted


def _risc_subject(event: dict[str, Any], issuer: str) -> str | None:
    """The Google account id an event is about: its `subject` in the `iss-sub` form, or the
    `id_token_claims` form when that carries a `sub` (a subject given only by an e-mail address
    is not acted on: who holds an address can change)."""
    subject = event.get("subject")
    if not isinstance(subject, dict) or subject.get("subject_type") not in ("iss-sub", "id_token_claims"):
        return None
    if subject.get("iss") not in (None, issuer):
        return None
    sub = subject.get("sub")
    return sub if isinstance(sub, str) and sub else None


def google_risc_event_receive(*, token: str) -> list[str]:
    """Act on a Security Event Token from Google's Cross-Account Protection. Returns the event
    types it acted on (none for Google's verification event, an unknown event or an unknown
    account, which are acknowledged all the same)."""
    param = "token"
    client_ids = [app.client_id for app in get_adapter().list_apps(None, provider=GOOGLE) if app.provider == GOOGLE]
    if not client_ids:
        raise SecurityEventProviderUnknown()
    issuer: str = settings.SOCIAL_GOOGLE_RISC_ISSUER
    configuration = _document(settings.SOCIAL_GOOGLE_RISC_CONFIGURATION_URL)
    try:
        claims = security_token_verify(
            token=token,
            jwks_uri=_document_url(configuration, "jwks_uri"),
            issuer=issuer,
            audiences=client_ids,
            param=param,
        )
        _jti_claim(claims, param)
    except SecurityTokenInvalid as error:
        logger.info("Google RISC event refused: %s", error.code)
        raise
    acted: list[str] = []
    try:
        with transaction.atomic():
            for event_type, event in claims["events"].items():
                outcome = _risc_event_act(event_type, event, issuer)
                logger.info("Google RISC event %s: %s", event_type[:120], outcome)
                if outcome.startswith("acted"):
                    acted.append(event_type)
    except Exception:
        _jti_release(claims)
        raise
    return acted


def _risc_event_act(event_type: str, event: dict[str, Any], issuer: str) -> str:
    if event_type not in (RISC_TOKENS_REVOKED, RISC_ACCOUNT_DISABLED, RISC_SESSIONS_REVOKED):
        return "acknowledged, ignored"
    uid = _risc_subject(event, issuer)
    subject_id = None if uid is None else _subject_id(provider_id=GOOGLE, uid=uid)
    if uid is None or subject_id is None:
        return "unknown subject"
    purged = 0
    if event_type in (RISC_TOKENS_REVOKED, RISC_ACCOUNT_DISABLED):
        purged = social_tokens_purge(provider_id=GOOGLE, uid=uid, actor_id="google-risc")
    ended = account_sessions_end(subject_id=subject_id, provider=GOOGLE)
    return f"acted: {purged} token(s) purged, {ended} session(s) ended"
