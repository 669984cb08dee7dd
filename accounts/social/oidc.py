"""Sign-in with a nonce for every provider that answers with an ID token (OpenID Connect apps,
Google, Apple), and what counts as a provider failing rather than refusing.

allauth's `openid_connect`, `google` and `apple` providers send PKCE (where configured) but no
`nonce`, so an ID token minted for another authorization request (a code injected into this
browser's callback, a replayed token) is accepted as long as the `state` matches. Here each
authorization request carries a fresh random nonce (OpenID Connect Core 1.0, 3.1.2.1), kept
server-side in allauth's own state for that login (the session's `socialaccount_states`, popped
when the callback arrives), and a login completing at one of those providers' callbacks is
refused unless its ID token names that nonce (3.1.3.7, step 11), compared in constant time.

How it plugs into allauth, and why this way:

* The nonce must be in the authorization URL and in the stashed state, both built in
  `OAuth2Provider.redirect()`. Provider subclasses overriding `redirect()` (`NonceRedirect`)
  add it to the authorization parameters and pass it on as a state keyword, which allauth's
  `stash_redirect_state()` keeps with the PKCE verifier. Every way of starting a login (the
  sign-in button, connecting another account, the headless API's redirect) goes through it.
* allauth finds a provider through the social account adapter's `get_provider()` (views, the
  login URL template tag, the headless API, and the callback views' OAuth2 adapters); the
  adapter hands out these subclasses for allauth's own classes (`nonce_provider()`).
  Registering them in allauth's provider registry instead (or naming them in the
  `provider_class` setting) depends on start-up order: allauth fills its registry while apps
  start, before the accounts app has built `SOCIALACCOUNT_PROVIDERS` from the environment, and
  the accounts modules are first imported in the middle of that filling, so a registration made
  there is overwritten by allauth's own class.
* The check needs the ID token's claims and that state together. allauth's callback views
  (which hard-code their own OAuth2 adapters, so a subclassed adapter would not be used there)
  decode the ID token in `complete_login()` and only afterwards attach the state to the social
  login; the first hook that sees both is the social account adapter's `pre_social_login()`,
  which calls `id_token_nonce_check()` before anything is looked up or saved. Where the claims
  are differs: an OpenID Connect app's login keeps them under `extra_data["id_token"]`; Google's
  and Apple's put the verified ID token's claims at the top level of `extra_data` (Google falls
  back to its userinfo answer when no ID token came, which has no nonce and is refused).
* Which logins are checked is decided by the callback URL the request resolved to: allauth's
  `openid_connect_callback`, `google_callback`, and for Apple `apple_finish_callback` (Apple
  form-posts to `apple_callback`, which only stores the answer and redirects to the finish URL,
  where the login completes). An ID token an app obtained itself and hands over through
  allauth's headless token flow (or Google's One Tap, `google_login_by_token`) carries the
  nonce the app or Google's script chose, which never passed through this server: the app
  checks it; we could not, and leave those logins alone.

No monkey-patching: allauth's modules and registry are left as they are.

For OpenID Connect the login start already talks to the provider (the discovery document), so
that subclass's `redirect()` also turns a provider that cannot be reached there into allauth's
error page. `PROVIDER_FAILURES` is what counts as the provider failing rather than refusing; the
social account adapter's `on_authentication_error()` answers those with 502 (accounts/social/adapter.py).
"""

import functools
import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

import requests
from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.models import SocialLogin
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from django.http import HttpRequest, HttpResponse

from vault.errors import ApplicationError, ErrorKind

NONCE_STATE_KEY = "oidc_nonce"  # the name in allauth's stashed state (kept for logins in flight)
OIDC_CALLBACK = "openid_connect_callback"  # allauth's, for every OpenID Connect app
GOOGLE_CALLBACK = "google_callback"
APPLE_CALLBACK = "apple_finish_callback"  # Apple posts to "apple_callback", which redirects here

# A provider that is down, slow, answers 5xx or sends something that is not the JSON it should
# (discovery document, token response, userinfo): its failure, not a refusal of the person.
# requests' JSONDecodeError is both a RequestException and a ValueError.
PROVIDER_FAILURES: tuple[type[Exception], ...] = (
    requests.RequestException,
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
)


class IdTokenNonceMismatch(ApplicationError):
    """The ID token does not name the nonce this login's authorization request carried."""

    kind = ErrorKind.NOT_AUTHENTICATED
    code = "id_token_nonce_mismatch"
    message = "The provider's ID token does not belong to this sign-in."


class NonceRedirect:
    """Mixed into an allauth OAuth2 provider: each authorization request carries a fresh nonce,
    which is also stashed in allauth's state for the login."""

    def redirect(
        self, request: HttpRequest, process: Any, next_url: Any = None, data: Any = None, **kwargs: Any
    ) -> HttpResponse:
        nonce = secrets.token_urlsafe(32)
        auth_params = kwargs.pop("auth_params", None)
        if auth_params is None:
            auth_params = self.get_auth_params()  # type: ignore[attr-defined]
        # Set last: a login's `auth_params` request parameter cannot choose the nonce.
        auth_params = {**auth_params, "nonce": nonce}
        kwargs[NONCE_STATE_KEY] = nonce  # stashed with the rest of allauth's state for this login
        response: HttpResponse = super().redirect(  # type: ignore[misc]
            request, process, next_url, data, auth_params=auth_params, **kwargs
        )
        return response


class NonceOpenIDConnectProvider(NonceRedirect, OpenIDConnectProvider):
    """allauth's OpenID Connect provider, sending a nonce with each authorization request and
    turning a discovery document it cannot fetch into the friendly error page."""

    def redirect(
        self, request: HttpRequest, process: Any, next_url: Any = None, data: Any = None, **kwargs: Any
    ) -> HttpResponse:
        try:
            return super().redirect(request, process, next_url, data, **kwargs)
        except PROVIDER_FAILURES as error:
            # The discovery document (fetched before anything is stashed) could not be had.
            state = {"process": process, "next": next_url, "headless": bool(kwargs.get("headless"))}
            return render_authentication_error(request, self, exception=error, extra_context={"state": state})


@functools.cache
def _nonce_classes() -> dict[type[Any], type[Any]]:
    """allauth's provider class -> ours; exact classes only, so a subclass configured on purpose
    (`provider_class`) is left as it is. Built on first use: allauth's Apple provider module
    imports the session engine (accounts/sessions.py), which imports this package, so it cannot
    be imported while this module loads."""
    from allauth.socialaccount.providers.apple.provider import AppleProvider
    from allauth.socialaccount.providers.google.provider import GoogleProvider

    class NonceGoogleProvider(NonceRedirect, GoogleProvider):
        """allauth's Google provider, sending a nonce with each authorization request."""

    class NonceAppleProvider(NonceRedirect, AppleProvider):
        """allauth's Apple provider, sending a nonce with each authorization request."""

    return {
        OpenIDConnectProvider: NonceOpenIDConnectProvider,
        GoogleProvider: NonceGoogleProvider,
        AppleProvider: NonceAppleProvider,
    }


def nonce_provider(provider: Any) -> Any:
    """`provider` as this module's subclass if it is allauth's OpenID Connect, Google or Apple
    provider (the adapter's `get_provider()` passes every provider it finds through here)."""
    nonce_class = _nonce_classes().get(type(provider))
    if nonce_class is None:
        return provider
    return nonce_class(provider.request, app=provider.app)


def _id_token_claims(url_name: str, extra_data: Any) -> dict[str, Any] | None:
    """The ID token's claims as allauth left them on the account for that callback."""
    if not isinstance(extra_data, dict):
        return None
    claims = extra_data.get("id_token") if url_name == OIDC_CALLBACK else extra_data
    return claims if isinstance(claims, dict) else None


def id_token_nonce_check(*, request: HttpRequest, sociallogin: SocialLogin) -> None:
    """Raise `IdTokenNonceMismatch` unless a login arriving at an OpenID Connect, Google or Apple
    callback has an ID token whose nonce is the one stashed for its authorization request.
    Logins by other routes (another provider; an app handing over an ID token it obtained
    itself, allauth's headless token flow, where we sent no nonce) are left alone."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.url_name not in (OIDC_CALLBACK, GOOGLE_CALLBACK, APPLE_CALLBACK):
        return
    expected = (sociallogin.state or {}).get(NONCE_STATE_KEY)
    claims = _id_token_claims(match.url_name, sociallogin.account.extra_data)
    received = claims.get("nonce") if claims is not None else None
    if not (isinstance(expected, str) and isinstance(received, str) and expected):
        raise IdTokenNonceMismatch()
    if not hmac.compare_digest(expected.encode(), received.encode()):
        raise IdTokenNonceMismatch()


def provider_failure_summary(exception: BaseException | None) -> str:
    """What failed, for a log line: the exception's type and, for an HTTP call, its method,
    host and path (never its query string, body or message, which can hold codes or tokens)."""
    if exception is None:
        return "-"
    summary = type(exception).__name__
    if isinstance(exception, requests.RequestException):
        prepared = exception.request
        method = getattr(prepared, "method", None) or ""
        url = getattr(prepared, "url", None) or getattr(exception.response, "url", None) or ""
        if url:
            parts = urlsplit(url)
            summary += f" ({' '.join(filter(None, [method, parts.netloc + parts.path]))})"
        if exception.response is not None:
            summary += f" HTTP {exception.response.status_code}"
    return summary
