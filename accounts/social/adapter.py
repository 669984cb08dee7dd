"""allauth's social account adapter: the consent and import screen at every social sign-up, the
ID token nonce (OpenID Connect, Google, Apple), the record of the provider's session id, and the
friendly page (502) for a provider that failed."""

import logging
from typing import Any

import requests
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.models import SocialLogin
from allauth.socialaccount.providers.base.constants import AuthError
from django.db import transaction
from django.http import HttpRequest
from django.shortcuts import render

from accounts.social.imports import social_claims_import
from accounts.social.oidc import (
    PROVIDER_FAILURES,
    IdTokenNonceMismatch,
    id_token_nonce_check,
    nonce_provider,
    provider_failure_summary,
)
from accounts.social.provider_sessions import provider_session_stash

# One logger for social sign-in, whichever module writes the line.
logger = logging.getLogger("accounts.social")

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
        """allauth's OpenID Connect, Google and Apple providers with a nonce (accounts/social/oidc.py)."""
        return nonce_provider(super().get_provider(request, provider, client_id))

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        """Before allauth looks the login up or stores anything: an ID token (OpenID Connect,
        Google, Apple) must carry the nonce of this login's authorization request
        (accounts/social/oidc.py). Then the marker of the provider's session id goes with the
        login, to be recorded in the session it signs in (accounts/social/provider_sessions.py)."""
        try:
            id_token_nonce_check(request=request, sociallogin=sociallogin)
        except IdTokenNonceMismatch as error:
            response = render_authentication_error(
                request,
                sociallogin.provider,
                error=AuthError.UNKNOWN,
                exception=error,
                extra_context={"state": sociallogin.state},
            )
            raise ImmediateHttpResponse(response) from None
        provider_session_stash(sociallogin=sociallogin)
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
            # A network error is the provider's; an answer of the wrong shape may also be a bug
            # of ours on the same path: its traceback goes to the log (scrubbed by the filter).
            exc_info=exception if failed and not isinstance(exception, requests.RequestException) else None,
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
