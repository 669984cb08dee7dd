"""Revoking a person's provider tokens when they are erased: the grant they gave this vault at
Google, GitHub, Facebook or an OpenID Connect provider is withdrawn at the provider too, so the
tokens are worthless even to someone holding a copy.

It must run before the person's keys are destroyed: the tokens are sealed under them and read
here through the gate (purpose: the person's rights). A provider that is down, refuses, or does
not offer revocation never stops the erasure; its failure is logged with the provider's id and
the social account's primary key only.
"""

import logging
import uuid
from collections.abc import Callable

import requests
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.models import SocialAccount, SocialApp

from accounts.social.sealing import social_account_read
from profiles.gate import RIGHTS_PURPOSE, Actor, SocialTokenValue

logger = logging.getLogger(__name__)

# Seconds to connect and to wait for an answer: an erasure waits for each provider in turn.
REVOCATION_TIMEOUT = (3.05, 5.0)
ACTOR = Actor.system("erasure.token-revocation")

GOOGLE_REVOKE_URL = "https://oauth2.googleapis.com/revoke"
GITHUB_GRANT_URL = "https://api.github.com/applications/{client_id}/grant"
FACEBOOK_PERMISSIONS_URL = "https://graph.facebook.com/me/permissions"


class RevocationUnavailable(Exception):
    """The provider offers no way to revoke (no revocation endpoint in its discovery document)."""


def _checked(response: requests.Response) -> None:
    response.raise_for_status()


def _revoke_openid_connect(app: SocialApp, token: SocialTokenValue) -> None:
    """RFC 7009 at the `revocation_endpoint` of the provider's discovery document: the refresh
    token (which ends the grant) and the access token, authenticated as the client (HTTP basic
    unless the provider supports only posting the secret, RFC 8414's default being basic)."""
    server_url: str = app.settings["server_url"]
    discovery_url = server_url if "/.well-known/" in server_url else server_url + "/.well-known/openid-configuration"
    discovery = requests.get(discovery_url, timeout=REVOCATION_TIMEOUT)
    _checked(discovery)
    config = discovery.json()
    endpoint = config.get("revocation_endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise RevocationUnavailable()
    methods = config.get("revocation_endpoint_auth_methods_supported") or ["client_secret_basic"]
    basic = "client_secret_basic" in methods or "client_secret_post" not in methods
    for value, hint in ((token.refresh_token, "refresh_token"), (token.access_token, "access_token")):
        if not value:
            continue
        data = {"token": value, "token_type_hint": hint}
        if not basic:
            data |= {"client_id": app.client_id, "client_secret": app.secret}
        auth = (app.client_id, app.secret) if basic else None
        _checked(requests.post(endpoint, data=data, auth=auth, timeout=REVOCATION_TIMEOUT))


def _revoke_google(app: SocialApp, token: SocialTokenValue) -> None:
    # Revoking the refresh token ends the grant and its access tokens; without one, the access token.
    value = token.refresh_token or token.access_token
    _checked(requests.post(GOOGLE_REVOKE_URL, data={"token": value}, timeout=REVOCATION_TIMEOUT))


def _revoke_github(app: SocialApp, token: SocialTokenValue) -> None:
    _checked(
        requests.delete(
            GITHUB_GRANT_URL.format(client_id=app.client_id),
            json={"access_token": token.access_token},
            auth=(app.client_id, app.secret),
            headers={"Accept": "application/vnd.github+json"},
            timeout=REVOCATION_TIMEOUT,
        )
    )


def _revoke_facebook(app: SocialApp, token: SocialTokenValue) -> None:
    # The token goes in the body, not the query string, so no URL anywhere carries it.
    _checked(
        requests.delete(FACEBOOK_PERMISSIONS_URL, data={"access_token": token.access_token}, timeout=REVOCATION_TIMEOUT)
    )


# allauth's provider (`SocialApp.provider`) -> how its grants are revoked. Apple is missing: its
# revocation needs a client secret JWT signed per call, which this vault does not make yet.
REVOKERS: dict[str, Callable[[SocialApp, SocialTokenValue], None]] = {
    "openid_connect": _revoke_openid_connect,
    "google": _revoke_google,
    "github": _revoke_github,
    "facebook": _revoke_facebook,
}


def social_tokens_revoke(*, subject_id: uuid.UUID) -> list[str]:
    """Revoke, at each provider that allows it, the tokens of the person's linked social
    accounts. Returns the provider ids (allauth's `SocialAccount.provider`, e.g. "google" or an
    OpenID Connect app's id) where every token of the account was revoked. Never raises for a
    provider's failure: it is logged (provider id and account pk, nothing personal) and the
    others are still tried."""
    revoked: list[str] = []
    for account_id, provider_id in SocialAccount.objects.filter(user_id=subject_id).values_list("pk", "provider"):
        try:
            app = get_adapter().get_app(None, provider=provider_id)
            revoke = REVOKERS.get(app.provider)
            if revoke is None:
                continue
            tokens = [
                token
                for token in social_account_read(account_id=account_id, purpose=RIGHTS_PURPOSE, actor=ACTOR).tokens
                if token.access_token or token.refresh_token
            ]
            if not tokens:
                continue
            for token in tokens:
                revoke(app, token)
        except RevocationUnavailable:
            logger.info("Provider %s offers no token revocation (social account %s)", provider_id, account_id)
            continue
        except Exception as error:  # nothing may stop an erasure: not a provider, not a bad answer
            logger.warning(
                "Revoking the grant at provider %s failed for social account %s: %s",
                provider_id,
                account_id,
                _failure(error),
            )
            continue
        revoked.append(provider_id)
    return list(dict.fromkeys(revoked))


def _failure(error: BaseException) -> str:
    """The exception's type, and an HTTP status if there was one: never its message (which can
    quote a URL, a request body or a token)."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return type(error).__name__ + (f" HTTP {status}" if status is not None else "")
