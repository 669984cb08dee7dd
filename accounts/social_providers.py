"""Social login providers, configured from the environment (built by accounts/apps.py at start-up).

A provider is switched on by giving its client id and secret; without them it does not exist
(no button, no URL that answers). Scopes are the least that sign-in needs; anything more (a
birthday, a location, likes) must be asked for by the operator with `SOCIAL_<PROVIDER>_SCOPES`,
and is still imported only for the fields the person agrees to at sign-up. Secrets may come
from mounted files (`NAME_FILE`), like every secret here.

    SOCIAL_GOOGLE_CLIENT_ID, SOCIAL_GOOGLE_SECRET
    SOCIAL_FACEBOOK_CLIENT_ID, SOCIAL_FACEBOOK_SECRET
    SOCIAL_GITHUB_CLIENT_ID, SOCIAL_GITHUB_SECRET
    SOCIAL_APPLE_CLIENT_ID (the Services ID), SOCIAL_APPLE_TEAM_ID, SOCIAL_APPLE_KEY_ID,
        SOCIAL_APPLE_PRIVATE_KEY (the .p8 key's PEM text)
    SOCIAL_OIDC_PROVIDERS=name[,name...], and per name (upper-cased, "-" as "_"):
        SOCIAL_OIDC_<NAME>_SERVER_URL, SOCIAL_OIDC_<NAME>_CLIENT_ID, SOCIAL_OIDC_<NAME>_SECRET,
        SOCIAL_OIDC_<NAME>_LABEL (the button's text; default: the name)
    SOCIAL_<PROVIDER>_SCOPES (comma-separated, replaces the minimal default; OIDC per name)
"""

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from vault.env import env_list, env_secret, env_str

# The least each provider needs to sign a person in and tell us their e-mail address.
MINIMAL_SCOPES = {
    "google": ["openid", "email", "profile"],
    "facebook": ["email", "public_profile"],
    "github": ["read:user", "user:email"],
    "apple": ["name", "email"],
    "openid_connect": ["openid", "email", "profile"],
}
# Facebook's Graph fields follow the scopes granted: only these unless more scopes are configured.
_FACEBOOK_FIELDS = ["id", "email", "name", "first_name", "last_name"]
_FACEBOOK_EXTRA_FIELDS = {"user_birthday": "birthday", "user_location": "location", "user_likes": "likes"}
_OIDC_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


def _client(prefix: str, environ: Mapping[str, str] | None) -> tuple[str, str] | None:
    client_id = env_str(f"{prefix}_CLIENT_ID", environ=environ)
    secret = env_secret(f"{prefix}_SECRET", environ=environ)
    if not client_id and not secret:
        return None
    if not (client_id and secret):
        raise ImproperlyConfigured(f"{prefix}_CLIENT_ID and {prefix}_SECRET (or {prefix}_SECRET_FILE) go together.")
    return client_id, secret


def _scopes(prefix: str, provider: str, environ: Mapping[str, str] | None) -> list[str]:
    return env_list(f"{prefix}_SCOPES", MINIMAL_SCOPES[provider], environ=environ)


_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _is_allowed_server_url(url: str) -> bool:
    """https anywhere; plain http only for a provider on this machine (development and tests).
    The host is compared parsed, so `http://127.0.0.1.attacker.example` is not taken as local."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (a malformed port raises here)
    except ValueError:
        return False
    if not host:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK_HOSTS)


def social_providers_from_env(environ: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """`SOCIALACCOUNT_PROVIDERS` for django-allauth: only the providers that are configured."""
    providers: dict[str, dict[str, Any]] = {}
    for provider in ("google", "facebook", "github"):
        prefix = f"SOCIAL_{provider.upper()}"
        client = _client(prefix, environ)
        if client is None:
            continue
        scopes = _scopes(prefix, provider, environ)
        if provider == "google" and "openid" not in scopes:
            # Without it Google may answer with no ID token, and a sign-in without this login's
            # nonce in one is refused (accounts/social/oidc.py).
            raise ImproperlyConfigured("SOCIAL_GOOGLE_SCOPES must include openid (the ID token carries the nonce).")
        config: dict[str, Any] = {
            "APPS": [{"client_id": client[0], "secret": client[1]}],
            "SCOPE": scopes,
            # PKCE (RFC 7636): an intercepted authorization code is useless without the verifier.
            "OAUTH_PKCE_ENABLED": True,
        }
        if provider == "google":
            # A refresh token, so the scheduled refresh (accounts/social/refresh.py) keeps what
            # Google sent accurate between sign-ins, as its User Data Policy asks.
            config["AUTH_PARAMS"] = {"access_type": "offline"}
        if provider == "facebook":
            config["FIELDS"] = _FACEBOOK_FIELDS + [
                field for scope, field in _FACEBOOK_EXTRA_FIELDS.items() if scope in scopes
            ]
            config["METHOD"] = "oauth2"
        providers[provider] = config

    apple_id = env_str("SOCIAL_APPLE_CLIENT_ID", environ=environ)
    if apple_id:
        team = env_str("SOCIAL_APPLE_TEAM_ID", environ=environ)
        key_id = env_str("SOCIAL_APPLE_KEY_ID", environ=environ)
        private_key = env_secret("SOCIAL_APPLE_PRIVATE_KEY", environ=environ)
        if not (team and key_id and private_key):
            raise ImproperlyConfigured(
                "SOCIAL_APPLE_CLIENT_ID needs SOCIAL_APPLE_TEAM_ID, SOCIAL_APPLE_KEY_ID and "
                "SOCIAL_APPLE_PRIVATE_KEY (or SOCIAL_APPLE_PRIVATE_KEY_FILE)."
            )
        providers["apple"] = {
            "APPS": [
                {"client_id": apple_id, "secret": key_id, "key": team, "settings": {"certificate_key": private_key}}
            ],
            "SCOPE": _scopes("SOCIAL_APPLE", "apple", environ),
        }

    oidc_apps = []
    for name in env_list("SOCIAL_OIDC_PROVIDERS", [], environ=environ):
        if not _OIDC_NAME.match(name):
            raise ImproperlyConfigured(
                f"SOCIAL_OIDC_PROVIDERS: {name!r} is not a provider name (lower case, digits, '-', at most 40)."
            )
        prefix = f"SOCIAL_OIDC_{name.upper().replace('-', '_')}"
        client = _client(prefix, environ)
        server_url = env_str(f"{prefix}_SERVER_URL", environ=environ)
        if client is None or not server_url:
            raise ImproperlyConfigured(
                f"The OpenID Connect provider {name!r} needs {prefix}_SERVER_URL, _CLIENT_ID and _SECRET."
            )
        if not _is_allowed_server_url(server_url):
            raise ImproperlyConfigured(
                f"{prefix}_SERVER_URL must be an https:// URL (plain http only on this machine)."
            )
        oidc_apps.append(
            {
                "provider_id": name,
                "name": env_str(f"{prefix}_LABEL", name, environ=environ),
                "client_id": client[0],
                "secret": client[1],
                "settings": {
                    "server_url": server_url,
                    "fetch_userinfo": True,
                    "oauth_pkce_enabled": True,
                    "scope": _scopes(prefix, "openid_connect", environ),
                },
            }
        )
    if oidc_apps:
        providers["openid_connect"] = {"APPS": oidc_apps}
    return providers


# Where each provider's sign-in page lives. Social sign-in starts with a form posted to us that
# redirects there, and browsers hold that redirect to the page's CSP `form-action`.
_SIGN_IN_ORIGINS = {
    "google": ["https://accounts.google.com"],
    "facebook": ["https://www.facebook.com"],
    "github": ["https://github.com"],
    "apple": ["https://appleid.apple.com"],
}


def social_form_action_sources(providers: dict[str, dict[str, Any]]) -> list[str]:
    """The origins to add to CSP `form-action` for the configured providers (an OpenID Connect
    provider's sign-in page is taken to be on its server URL's origin)."""
    sources: list[str] = []
    for provider, config in providers.items():
        if provider == "openid_connect":
            for app in config.get("APPS", []):
                parts = urlsplit(app["settings"]["server_url"])
                sources.append(f"{parts.scheme}://{parts.netloc}")
        else:
            sources.extend(_SIGN_IN_ORIGINS.get(provider, []))
    return list(dict.fromkeys(sources))
