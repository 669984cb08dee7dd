"""The provider's session id (`sid`) of each OpenID Connect sign-in, recorded as a keyed hash, so
that a back-channel logout token naming a `sid` ends exactly the session it means (OpenID
Connect Back-Channel Logout 1.0, 2.4 and 2.7) rather than every session signed in with that
provider.

What is recorded, and where:

* In the session itself, under `PROVIDER_SESSIONS_KEY`: the marker of the sign-in, an
  HMAC-SHA256 of (provider id, issuer, sid) under a key derived (HKDF) from the vault's index
  root key. The provider's sid is an identifier of the person's session there; the database
  (which keeps session data signed, not encrypted), the cache and the logs only ever see the
  marker. Django copies session data when it changes a session's key (at sign-in, at a
  password change), so the record follows the session wherever its key goes.
* In Django's cache (Redis in production), marker -> the person's subject id, for as long as
  the session can live: what a logout token with a `sid` but no `sub` needs to find the person
  whose sessions to look through. The value is the opaque subject id, never a session key
  (a bearer credential) or anything the provider sent.

A logout token is then matched as: `sub` names the person (through their social account) or,
without one, the cache does; of that person's sessions signed in with that provider, those
whose record holds the marker end. If the cache has lost the entry (evicted, flushed), a
token with only a `sid` ends nothing; a token with `sub` and `sid` does not depend on the cache.

The marker is taken from the ID token's claims in the adapter's `pre_social_login()` (right
after the nonce check, while the claims are on the social login) and carried in allauth's
state for the login, which allauth keeps with the pending sign-up and across a second-factor
stage; it is written into the session when allauth signs the person in (its `user_logged_in`
signal, which names the social login), when the session's final key is known.
"""

import hashlib
import hmac
import json
import uuid
from functools import lru_cache
from typing import Any

from allauth.account.signals import user_logged_in
from allauth.socialaccount.models import SocialLogin
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpRequest

from vault.keys import get_provider

PROVIDER_SESSIONS_KEY = "vault_provider_sessions"  # in the session: the markers of its sign-ins
SID_STATE_KEY = "provider_session"  # in allauth's state for a login: the marker, until sign-in
_MAX_MARKERS = 8  # a session signs in a few times at most (re-authentication); never grows unbounded
_OPENID_CONNECT = "openid_connect"


@lru_cache(maxsize=4)
def _marker_key(root: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"vault-provider-session/1").derive(root)


def provider_session_marker(*, provider_id: str, issuer: str, sid: str) -> str:
    """The keyed hash that stands for the provider's session `sid` (64 hex digits). The three
    parts are JSON-encoded together, so no choice of values can make two triples collide."""
    message = json.dumps([provider_id, issuer, sid], ensure_ascii=False).encode()
    return hmac.new(_marker_key(get_provider().index_root_key()), message, hashlib.sha256).hexdigest()


def _cache_key(marker: str) -> str:
    return f"accounts.provider-session.{marker}"


def provider_session_stash(*, sociallogin: SocialLogin) -> None:
    """Put the marker of an OpenID Connect login's `sid` (if its ID token has one) in allauth's
    state for the login, for `_provider_session_record` to find when the person is signed in."""
    account = sociallogin.account
    extra_data = account.extra_data if isinstance(account.extra_data, dict) else {}
    claims = extra_data.get("id_token")
    if not isinstance(claims, dict) or not isinstance(sociallogin.state, dict):
        return
    if getattr(sociallogin.provider, "id", None) != _OPENID_CONNECT:
        return  # only OpenID Connect apps have a back-channel logout receiver here
    sid, issuer = claims.get("sid"), claims.get("iss")
    if isinstance(sid, str) and sid and isinstance(issuer, str) and issuer:
        sociallogin.state[SID_STATE_KEY] = provider_session_marker(provider_id=account.provider, issuer=issuer, sid=sid)


@receiver(user_logged_in, dispatch_uid="accounts.social.provider_session_record")
def _provider_session_record(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """allauth signed someone in: if it was an OpenID Connect login whose ID token named a `sid`,
    record its marker in the session and where to find the person by it."""
    sociallogin = kwargs.get("sociallogin")
    state = getattr(sociallogin, "state", None)
    marker = state.get(SID_STATE_KEY) if isinstance(state, dict) else None
    session = getattr(request, "session", None)
    if not isinstance(marker, str) or session is None or getattr(user, "pk", None) is None:
        return
    markers = [value for value in session.get(PROVIDER_SESSIONS_KEY, []) if value != marker]
    session[PROVIDER_SESSIONS_KEY] = [*markers, marker][-_MAX_MARKERS:]
    cache.set(_cache_key(marker), str(user.pk), session.get_expiry_age())


def provider_session_subject(*, marker: str) -> uuid.UUID | None:
    """The subject id recorded for a provider session's marker, if the cache still has it."""
    value = cache.get(_cache_key(marker))
    try:
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


def provider_session_forget(*, marker: str) -> None:
    """Drop the cache entry of a provider session that has ended."""
    cache.delete(_cache_key(marker))
