"""Revoking provider tokens: the grant a person gave this vault at Google, GitHub, Facebook, Apple
or an OpenID Connect provider is withdrawn at the provider too, so the tokens are worthless even to
someone holding a copy. It happens when one link is removed (`social_account_revoke`, called by
a receiver just before the social account row and its tokens are deleted: the connected-accounts
page, allauth's headless API and the admin alike) and when the person is erased
(`social_tokens_revoke`, before their keys are destroyed).

The tokens are sealed and read here through the gate. A provider that is down, refuses, or does
not offer revocation never stops a disconnection or an erasure; its failure is logged with the
provider's id and the social account's primary key only. Deletions that must not call the
provider run inside `revocation_skipped()`: an erasure's purge (the tokens were revoked before the
keys went, and can no longer be read) and a provider's own deletion callback (the person removed
the app there; its tokens are dead already).
"""

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import requests
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.models import SocialAccount, SocialApp
from allauth.socialaccount.providers.apple.client import AppleOAuth2Client
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from accounts.social.sealing import social_account_read
from profiles.gate import RIGHTS_PURPOSE, Actor, SocialTokenValue

logger = logging.getLogger(__name__)

# Seconds to connect and to wait for an answer: an erasure waits for each provider in turn.
REVOCATION_TIMEOUT = (3.05, 5.0)
ACTOR = Actor.system("erasure.token-revocation")
DISCONNECT_ACTOR = Actor.system("social.token-revocation")

_skipped: ContextVar[bool] = ContextVar("accounts.social.revocation_skipped", default=False)

GOOGLE_REVOKE_URL = "https://oauth2.googleapis.com/revoke"
GITHUB_GRANT_URL = "https://api.github.com/applications/{client_id}/grant"
FACEBOOK_PERMISSIONS_URL = "https://graph.facebook.com/me/permissions"
APPLE_REVOKE_URL = "https://appleid.apple.com/auth/revoke"


class RevocationUnavailable(Exception):
    """The provider offers no way to revoke (no revocation endpoint in its discovery document)."""


def _checked(response: requests.Response) -> None:
    response.raise_for_status()


def _revoke_openid_connect(app: SocialApp, token: SocialTokenValue, answer: dict[str, Any]) -> None:
    """RFC 7009 at the `revocation_endpoint` of the provider's discovery document: the refresh
    token (which ends the grant) and the access token, authenticated as the client is at the
    token endpoint (RFC 7009 2.1), by allauth's rule: the app's `token_auth_method` when set,
    else the secret in the body unless the provider accepts only HTTP basic (RFC 8414's default
    when it lists nothing)."""
    server_url: str = app.settings["server_url"]
    discovery_url = server_url if "/.well-known/" in server_url else server_url + "/.well-known/openid-configuration"
    discovery = requests.get(discovery_url, timeout=REVOCATION_TIMEOUT)
    _checked(discovery)
    config = discovery.json()
    endpoint = config.get("revocation_endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise RevocationUnavailable()
    configured = app.settings.get("token_auth_method")
    if configured:
        basic = configured == "client_secret_basic"
    else:
        methods = (
            config.get("revocation_endpoint_auth_methods_supported")
            or config.get("token_endpoint_auth_methods_supported")
            or ["client_secret_basic"]
        )
        basic = "client_secret_post" not in methods and "client_secret_basic" in methods
    for value, hint in ((token.refresh_token, "refresh_token"), (token.access_token, "access_token")):
        if not value:
            continue
        data = {"token": value, "token_type_hint": hint}
        if not basic:
            data |= {"client_id": app.client_id, "client_secret": app.secret}
        auth = (app.client_id, app.secret) if basic else None
        _checked(requests.post(endpoint, data=data, auth=auth, timeout=REVOCATION_TIMEOUT))


def _revoke_google(app: SocialApp, token: SocialTokenValue, answer: dict[str, Any]) -> None:
    # Revoking the refresh token ends the grant and its access tokens; without one, the access token.
    value = token.refresh_token or token.access_token
    _checked(requests.post(GOOGLE_REVOKE_URL, data={"token": value}, timeout=REVOCATION_TIMEOUT))


def _revoke_github(app: SocialApp, token: SocialTokenValue, answer: dict[str, Any]) -> None:
    _checked(
        requests.delete(
            GITHUB_GRANT_URL.format(client_id=app.client_id),
            json={"access_token": token.access_token},
            auth=(app.client_id, app.secret),
            headers={"Accept": "application/vnd.github+json"},
            timeout=REVOCATION_TIMEOUT,
        )
    )


def _revoke_facebook(app: SocialApp, token: SocialTokenValue, answer: dict[str, Any]) -> None:
    # The token goes in the body, not the query string, so no URL anywhere carries it.
    _checked(
        requests.delete(FACEBOOK_PERMISSIONS_URL, data={"access_token": token.access_token}, timeout=REVOCATION_TIMEOUT)
    )


def _revoke_apple(app: SocialApp, token: SocialTokenValue, answer: dict[str, Any]) -> None:
    """Sign in with Apple's revocation endpoint: the refresh token (allauth keeps it as the token
    secret; revoking it ends the person's authorization of the app), or the access token. The
    client authenticates with a client secret JWT (ES256 under the app's private key: iss the
    team id, sub the Services ID, aud Apple, valid an hour), made per call by allauth's own
    Apple client, as it does for the token request. A grant is revoked under the client id it was
    issued to (the ID token's `aud`: the Services ID for the web, a bundle id for an iOS app
    handing its token over), when that is one of the app's configured ids."""
    client_ids = [client_id.strip() for client_id in app.client_id.split(",") if client_id.strip()]
    audience = answer.get("aud")
    client_id = audience if isinstance(audience, str) and audience in client_ids else client_ids[0]
    client = AppleOAuth2Client(None, client_id, app.secret, "POST", APPLE_REVOKE_URL, None)
    value, hint = token.refresh_token, "refresh_token"
    if not value:
        value, hint = token.access_token, "access_token"
    data = {
        "client_id": client.get_client_id(),
        "client_secret": client.generate_client_secret(),
        "token": value,
        "token_type_hint": hint,
    }
    _checked(requests.post(APPLE_REVOKE_URL, data=data, timeout=REVOCATION_TIMEOUT))


# allauth's provider (`SocialApp.provider`) -> how its grants are revoked.
REVOKERS: dict[str, Callable[[SocialApp, SocialTokenValue, dict[str, Any]], None]] = {
    "openid_connect": _revoke_openid_connect,
    "google": _revoke_google,
    "github": _revoke_github,
    "facebook": _revoke_facebook,
    "apple": _revoke_apple,
}


def social_account_revoke(*, account_id: int, purpose: str = RIGHTS_PURPOSE, actor: Actor = DISCONNECT_ACTOR) -> bool:
    """Revoke, at its provider, the tokens of one linked social account, read through the gate
    for `purpose` (by default the person's rights: removing a link deletes what the provider
    gave, which a restriction of processing must not block). True when every token the account
    holds was revoked; False when it holds none, its provider offers no revocation, or the
    provider failed. Never raises for a
    provider's failure: it is logged (provider id and account pk, nothing personal)."""
    provider_id = SocialAccount.objects.filter(pk=account_id).values_list("provider", flat=True).first()
    if provider_id is None:
        return False
    try:
        app = get_adapter().get_app(None, provider=provider_id)
        revoke = REVOKERS.get(app.provider)
        if revoke is None:
            return False
        sealed = social_account_read(account_id=account_id, purpose=purpose, actor=actor)
        tokens = [token for token in sealed.tokens if token.access_token or token.refresh_token]
        if not tokens:
            return False
        answer = sealed.extra_data if isinstance(sealed.extra_data, dict) else {}
        for token in tokens:
            revoke(app, token, answer)
    except RevocationUnavailable:
        logger.info("Provider %s offers no token revocation (social account %s)", provider_id, account_id)
        return False
    except Exception as error:  # nothing may stop a disconnection or an erasure
        logger.warning(
            "Revoking the grant at provider %s failed for social account %s: %s",
            provider_id,
            account_id,
            _failure(error),
        )
        return False
    return True


def social_tokens_revoke(*, subject_id: uuid.UUID) -> list[str]:
    """Revoke, at each provider that allows it, the tokens of the person's linked social
    accounts (for the person's rights: an erasure). Returns the provider ids (allauth's
    `SocialAccount.provider`, e.g. "google" or an OpenID Connect app's id) where every token of
    the account was revoked. A provider's failure is logged and the others are still tried."""
    revoked = [
        provider_id
        for account_id, provider_id in SocialAccount.objects.filter(user_id=subject_id).values_list("pk", "provider")
        if social_account_revoke(account_id=account_id, purpose=RIGHTS_PURPOSE, actor=ACTOR)
    ]
    return list(dict.fromkeys(revoked))


@contextlib.contextmanager
def revocation_skipped() -> Iterator[None]:
    """Delete social accounts inside this block without asking their providers to revoke."""
    token = _skipped.set(True)
    try:
        yield
    finally:
        _skipped.reset(token)


@receiver(pre_delete, sender=SocialAccount, dispatch_uid="accounts.social.revoke_before_unlink")
def _revoke_before_unlink(sender: Any, instance: SocialAccount, **kwargs: Any) -> None:
    """A link removed (the connected-accounts page, allauth's headless API, the admin) takes its
    grant at the provider with it. Runs before the delete, while the sealed tokens still exist."""
    if not _skipped.get():
        social_account_revoke(account_id=instance.pk)


def _failure(error: BaseException) -> str:
    """The exception's type, and an HTTP status if there was one: never its message (which can
    quote a URL, a request body or a token)."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return type(error).__name__ + (f" HTTP {status}" if status is not None else "")
