"""OpenID Connect Back-Channel Logout with a logout token the provider itself sends: a person
signs up here through the real oidc-provider (tests/e2e/oidc/provider.js, its client registered
with our back-channel logout URI), then signs out at the provider; the provider POSTs its logout
token to the live server, which ends the person's session here."""

from typing import Any

import pytest
from allauth.usersessions.models import UserSession
from django.contrib.sessions.models import Session

from accounts.models import User
from tests.e2e.test_oidc_login import (
    PROVIDER_ID,
    _leave_for_provider,
    _only_local,
    _running_provider,
    _screenshot,
    _sign_in_at_provider,
    _use_provider,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _sign_up(page: Any, live_server: Any) -> None:
    page.wait_for_url(f"{live_server.url}/accounts/3rdparty/signup/")
    page.check("input[name=import_fields][value=birth_date]")
    if page.locator("select[name=country]").count():
        page.select_option("select[name=country]", "NL")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/3rdparty/signup/" not in url)


def test_signing_out_at_the_provider_ends_the_session_here(
    page, live_server, settings, committed_db, profile_schema, tmp_path
):
    base = live_server.url.replace("localhost", "127.0.0.1")
    logout_uri = f"{base}/accounts/oidc/{PROVIDER_ID}/backchannel-logout/"
    log = tmp_path / "provider.log"
    with _running_provider(live_server, log, f"--backchannel-logout-uri={logout_uri}") as provider_url:
        _use_provider(settings, provider_url)
        page.route("**/*", _only_local)
        _leave_for_provider(page, live_server, provider_url)
        _sign_in_at_provider(page, "marguerite")
        _sign_up(page, live_server)

        user = User.objects.get(email="marguerite@oidc.example")
        [signed_in] = UserSession.objects.filter(user=user)
        assert Session.objects.filter(session_key=signed_in.session_key).exists()
        page.goto(f"{live_server.url}/accounts/3rdparty/")
        assert "Test Provider, connected on" in page.inner_text("main")

        # At the provider: its end-session endpoint asks for confirmation, then sends the logout
        # token to every client of that session before it answers the browser.
        page.goto(f"{provider_url}/session/end")
        _screenshot(page, "backchannel-1-provider-asks")
        page.click("button[name=logout]")
        page.wait_for_url(f"{provider_url}/session/end/success**")

    assert "backchannel logout sent to vault-e2e" in log.read_text(), log.read_text()
    assert not Session.objects.filter(session_key=signed_in.session_key).exists()
    assert not UserSession.objects.filter(user=user).exists()
    page.goto(f"{live_server.url}/accounts/3rdparty/")
    assert "/accounts/login/" in page.url, "the browser is signed out here too"
    _screenshot(page, "backchannel-2-signed-out-here")
    assert User.objects.filter(pk=user.pk, is_active=True).exists(), "only the session ended"


def test_with_the_providers_session_id_only_the_session_that_signed_in_there_ends(
    browser, page, live_server, settings, committed_db, profile_schema, tmp_path
):
    """The client registered with `backchannel_logout_session_required`: ID tokens and logout
    tokens carry the provider's `sid`. The person is signed in here twice (two browsers, two
    sessions at the provider); signing out at the provider in one ends only that one here."""
    base = live_server.url.replace("localhost", "127.0.0.1")
    logout_uri = f"{base}/accounts/oidc/{PROVIDER_ID}/backchannel-logout/"
    log = tmp_path / "provider.log"
    options = (f"--backchannel-logout-uri={logout_uri}", "--backchannel-logout-session-required")
    other_browser = browser.new_context()
    other = other_browser.new_page()
    try:
        with _running_provider(live_server, log, *options) as provider_url:
            _use_provider(settings, provider_url)
            page.route("**/*", _only_local)
            _leave_for_provider(page, live_server, provider_url)
            _sign_in_at_provider(page, "marguerite")
            _sign_up(page, live_server)
            user = User.objects.get(email="marguerite@oidc.example")
            [first] = UserSession.objects.filter(user=user)

            other.route("**/*", _only_local)
            _leave_for_provider(other, live_server, provider_url)
            _sign_in_at_provider(other, "marguerite")
            other.wait_for_url(lambda url: url.startswith(live_server.url) and "/accounts/oidc/" not in url)
            second = UserSession.objects.filter(user=user).exclude(session_key=first.session_key).get()

            page.goto(f"{provider_url}/session/end")
            page.click("button[name=logout]")
            page.wait_for_url(f"{provider_url}/session/end/success**")

        assert "backchannel logout sent to vault-e2e" in log.read_text(), log.read_text()
        assert not Session.objects.filter(session_key=first.session_key).exists()
        assert Session.objects.filter(session_key=second.session_key).exists(), "the other sign-in stays"
        page.goto(f"{live_server.url}/accounts/3rdparty/")
        assert "/accounts/login/" in page.url, "signed out in the browser that signed out there"
        other.goto(f"{live_server.url}/accounts/3rdparty/")
        assert other.url.endswith("/accounts/3rdparty/"), "still signed in in the other"
        _screenshot(other, "backchannel-3-other-session-stays")
    finally:
        other_browser.close()
