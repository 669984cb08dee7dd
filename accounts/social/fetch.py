"""Calls to a provider for a refresh: a new access token from the sealed refresh token (OpenID
Connect and Google: the `refresh_token` grant; Facebook: the long-lived token exchange), then the
provider's current answer (userinfo, Graph `/me`, GitHub `/user`). GitHub's tokens do not
expire: its answer is re-read with the stored token.

What went wrong is told apart, because only one of them may lead to a purge:
`GrantRevoked` (the person withdrew the grant: `invalid_grant`, or 401 for a token that should
still be good), `ProviderUnavailable` (unreachable, timed out, 5xx, an answer that is not the
expected JSON: retried later, never deletes anything on its own), `ProviderRefused` (another
4xx), `NoUsableToken` and `RefreshUnsupported`. Tokens travel in bodies and headers, never in a
URL; errors carry no provider text.
"""

import datetime
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import requests
from allauth.socialaccount.models import SocialApp
from django.conf import settings

from profiles.gate import SocialTokenValue
from vault.errors import ApplicationError, ErrorKind

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)
GOOGLE_USERINFO_URL = "https://openidconnect.googleapis.com/v1/userinfo"
FACEBOOK_TOKEN_URL = "https://graph.facebook.com/oauth/access_token"  # noqa: S105 (a URL)
FACEBOOK_ME_URL = "https://graph.facebook.com/me"
GITHUB_USER_URL = "https://api.github.com/user"
_FACEBOOK_DEFAULT_FIELDS = ["id", "email", "name", "first_name", "last_name"]
_FACEBOOK_INVALID_TOKEN = 190  # Graph API: the access token is invalid, expired or revoked


class SocialCode(StrEnum):
    GRANT_REVOKED = "social_grant_revoked"
    PROVIDER_UNAVAILABLE = "social_provider_unavailable"
    PROVIDER_REFUSED = "social_provider_refused"
    NO_USABLE_TOKEN = "social_no_usable_token"  # noqa: S105 (an error code)
    REFRESH_UNSUPPORTED = "social_refresh_unsupported"


class RefreshFailed(ApplicationError):
    """A refresh did not bring a new answer. `retry_soon`: worth trying again shortly."""

    kind = ErrorKind.UNAVAILABLE
    retry_soon = False


class GrantRevoked(RefreshFailed):
    kind = ErrorKind.FORBIDDEN
    code = SocialCode.GRANT_REVOKED
    message = "The person withdrew this grant at the provider."


class ProviderUnavailable(RefreshFailed):
    code = SocialCode.PROVIDER_UNAVAILABLE
    message = "The provider did not answer usefully (unreachable, timed out, 5xx or malformed)."
    retry_soon = True


class ProviderRefused(RefreshFailed):
    kind = ErrorKind.CONFLICT
    code = SocialCode.PROVIDER_REFUSED
    message = "The provider refused the request."


class NoUsableToken(RefreshFailed):
    kind = ErrorKind.CONFLICT
    code = SocialCode.NO_USABLE_TOKEN
    message = "No refresh token, and the access token has expired: only a sign-in can refresh."


class RefreshUnsupported(RefreshFailed):
    kind = ErrorKind.CONFLICT
    code = SocialCode.REFRESH_UNSUPPORTED
    message = "This provider offers no way to re-read the person's data."


@dataclass(frozen=True)
class Fetched:
    """A provider's current answer, and the tokens to keep ("" refresh token: keep the sealed one)."""

    access_token: str
    refresh_token: str
    expires_at: datetime.datetime | None
    extra_data: dict[str, Any]


def _timeout() -> tuple[float, float]:
    seconds = float(settings.SOCIALACCOUNT_REQUESTS_TIMEOUT)
    return (min(seconds, 5.0), seconds)


def _error_code(response: requests.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    return error.get("code") if isinstance(error, dict) else error  # Graph API nests it


def _call(method: str, url: str, *, token_in_use: bool = True, **kwargs: Any) -> dict[str, Any]:
    """One call, its answer as a JSON object, or the failure classified."""
    try:
        response = requests.request(method, url, timeout=_timeout(), allow_redirects=False, **kwargs)
    except requests.RequestException as error:
        raise ProviderUnavailable() from error
    status = response.status_code
    if status >= 500 or status in (408, 429):
        raise ProviderUnavailable()
    if status >= 400:
        code = _error_code(response)
        if code == "invalid_grant" or code == _FACEBOOK_INVALID_TOKEN:
            raise GrantRevoked()
        if status == 401 and code != "invalid_client" and token_in_use:
            raise GrantRevoked()
        raise ProviderRefused()
    if status != 200:
        raise ProviderUnavailable()
    try:
        body = response.json()
    except ValueError:
        raise ProviderUnavailable() from None
    if not isinstance(body, dict):
        raise ProviderUnavailable()
    return body


def _expires_at(body: dict[str, Any], now: datetime.datetime) -> datetime.datetime | None:
    seconds = body.get("expires_in")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0:
        return now + datetime.timedelta(seconds=seconds)
    return None


def _token_from(body: dict[str, Any], now: datetime.datetime) -> tuple[str, str, datetime.datetime | None]:
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise ProviderUnavailable()
    refresh = body.get("refresh_token")
    return access, refresh if isinstance(refresh, str) else "", _expires_at(body, now)


def _oauth2_token(
    token_url: str, app: SocialApp, token: SocialTokenValue, *, basic: bool, now: datetime.datetime
) -> tuple[str, str, datetime.datetime | None]:
    """A fresh access token by the refresh token grant; without a refresh token, the access token
    while it is still good."""
    if not token.refresh_token:
        if token.access_token and (token.expires_at is None or token.expires_at > now):
            return token.access_token, "", token.expires_at
        raise NoUsableToken()
    data = {"grant_type": "refresh_token", "refresh_token": token.refresh_token}
    if not basic:
        data |= {"client_id": app.client_id, "client_secret": app.secret}
    auth = (app.client_id, app.secret) if basic else None
    return _token_from(_call("POST", token_url, data=data, auth=auth), now)


def _bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}


def _same_subject(answer: dict[str, Any], uid: str, key: str) -> None:
    """An answer about someone else is never taken (a provider mix-up must not rewrite a profile)."""
    if key in answer and str(answer[key]) != uid:
        raise ProviderRefused()


def _fetch_openid_connect(
    app: SocialApp, token: SocialTokenValue, uid: str, extra_data: dict[str, Any], now: datetime.datetime
) -> Fetched:
    server_url: str = app.settings["server_url"]
    discovery_url = server_url if "/.well-known/" in server_url else server_url + "/.well-known/openid-configuration"
    config = _call("GET", discovery_url, token_in_use=False)
    token_url, userinfo_url = config.get("token_endpoint"), config.get("userinfo_endpoint")
    if not isinstance(token_url, str) or not isinstance(userinfo_url, str):
        raise RefreshUnsupported()
    basic = app.settings.get("token_auth_method") == "client_secret_basic"
    access, refresh, expires_at = _oauth2_token(token_url, app, token, basic=basic, now=now)
    userinfo = _call("GET", userinfo_url, headers=_bearer(access))
    _same_subject(userinfo, uid, "sub")
    return Fetched(access, refresh, expires_at, {**extra_data, "userinfo": userinfo})


def _fetch_google(
    app: SocialApp, token: SocialTokenValue, uid: str, extra_data: dict[str, Any], now: datetime.datetime
) -> Fetched:
    access, refresh, expires_at = _oauth2_token(GOOGLE_TOKEN_URL, app, token, basic=False, now=now)
    userinfo = _call("GET", GOOGLE_USERINFO_URL, headers=_bearer(access))
    _same_subject(userinfo, uid, "sub")
    return Fetched(access, refresh, expires_at, {**extra_data, **userinfo})


def _fetch_facebook(
    app: SocialApp, token: SocialTokenValue, uid: str, extra_data: dict[str, Any], now: datetime.datetime
) -> Fetched:
    if not token.access_token:
        raise NoUsableToken()
    exchange = {
        "grant_type": "fb_exchange_token",
        "client_id": app.client_id,
        "client_secret": app.secret,
        "fb_exchange_token": token.access_token,
    }
    access, _, expires_at = _token_from(_call("POST", FACEBOOK_TOKEN_URL, data=exchange), now)
    providers: dict[str, Any] = getattr(settings, "SOCIALACCOUNT_PROVIDERS", {})
    fields = providers.get("facebook", {}).get("FIELDS", _FACEBOOK_DEFAULT_FIELDS)
    me = _call("GET", FACEBOOK_ME_URL, params={"fields": ",".join(fields)}, headers=_bearer(access))
    _same_subject(me, uid, "id")
    return Fetched(access, "", expires_at, me)


def _fetch_github(
    app: SocialApp, token: SocialTokenValue, uid: str, extra_data: dict[str, Any], now: datetime.datetime
) -> Fetched:
    if not token.access_token:
        raise NoUsableToken()
    headers = {"Authorization": f"token {token.access_token}", "Accept": "application/vnd.github+json"}
    user = _call("GET", GITHUB_USER_URL, headers=headers)
    _same_subject(user, uid, "id")
    return Fetched(token.access_token, "", token.expires_at, {**extra_data, **user})


FETCHERS = {
    "openid_connect": _fetch_openid_connect,
    "google": _fetch_google,
    "facebook": _fetch_facebook,
    "github": _fetch_github,
}


def provider_answer_fetch(
    *,
    app: SocialApp,
    token: SocialTokenValue,
    uid: str,
    extra_data: dict[str, Any],
    now: datetime.datetime,
) -> Fetched:
    """The provider's current answer about the account `uid`, with the tokens to keep. Raises a
    `RefreshFailed` subclass saying what went wrong."""
    fetch = FETCHERS.get(str(app.provider))
    if fetch is None:
        raise RefreshUnsupported()
    return fetch(app, token, uid, extra_data, now)
