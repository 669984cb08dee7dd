"""The friendly error page for a provider that fails on the callback (allauth lets some
exceptions escape), with one log line without personal data."""

from collections.abc import Callable
from contextlib import suppress
from typing import Any

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.providers import registry
from django.http import HttpRequest, HttpResponse

from accounts.social.oidc import (
    PROVIDER_FAILURES,
)

_CALLER_PARAMS = ("scope", "auth_params")


class SocialLoginMiddleware:
    """Holds provider logins to the configured scopes, and turns a provider failure that escapes
    allauth's views into the friendly error page. (Pending sign-in state is sealed by the session
    backend, `accounts.sessions`.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> None:
        """allauth lets a login's `scope` parameter add scopes, and its `auth_params` parameter
        add anything to the provider's authorization URL (a scope, a state of the caller's
        choosing). The configured, minimal scopes and allauth's own state are all a login may
        send: both parameters are dropped."""
        match = request.resolver_match
        if match is not None and (match.url_name or "").endswith("_login"):
            for params in ("GET", "POST"):
                present = [name for name in _CALLER_PARAMS if name in getattr(request, params)]
                if present:
                    copy = getattr(request, params).copy()
                    for name in present:
                        copy.pop(name)
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
