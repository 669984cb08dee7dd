"""Provider data kept fresh and lawful, against the real oidc-provider (tests/e2e/oidc/provider.js)
on 127.0.0.1: a claim changed at the provider reaches the profile at the next sign-in and at the
next scheduled refresh (the refresh token grant, then userinfo), with history; a grant withdrawn
at the provider purges what it brought; a provider that stays unreachable past the maximum age
does too. The clock of the refresh is passed in (`now`), so no test waits a day."""

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import requests
from allauth.socialaccount.models import SocialAccount, SocialToken
from django.utils import timezone
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from accounts.models import PurgeReason, SealedSocialAccountData, SocialLinkState, User
from accounts.social import social_account_read, social_link_refresh
from profiles.gate import ACCOUNT_PURPOSE, RIGHTS_PURPOSE, Actor, profile_history_read, profile_read
from tests.e2e.test_oidc_login import (
    CLIENT_ID,
    CLIENT_SECRET,
    PROVIDER_ID,
    _free_port,
    _leave_for_provider,
    _only_local,
    _running_provider,
    _screenshot,
    _use_provider,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _sign_in_at_provider(page: Any, login: str) -> None:
    """The provider's login form, then its consent form when it asks (a second login may not)."""
    page.wait_for_selector("input[name=login]")
    page.fill("input[name=login]", login)
    if page.locator("input[name=password]").count():
        page.fill("input[name=password]", "any password works here")
    page.click("button[type=submit]")
    consent = page.locator("button:has-text('Continue')")
    try:
        consent.wait_for(timeout=5000)
    except PlaywrightTimeout:
        return
    consent.click()


def _sign_up(page: Any, live_server: Any, provider_url: str, login: str, fields: list[str]) -> User:
    _leave_for_provider(page, live_server, provider_url)
    _sign_in_at_provider(page, login)
    page.wait_for_url(f"{live_server.url}/accounts/3rdparty/signup/")
    for field in fields:
        page.check(f"input[name=import_fields][value={field}]")
    if page.locator("select[name=country]").count():
        page.select_option("select[name=country]", "NL")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/3rdparty/signup/" not in url)
    return User.objects.get(email=f"{login}@oidc.example")


def _change_claims(claims_file: Path, login: str, **claims: str) -> None:
    claims_file.write_text(json.dumps({login: claims}))


def _own(user: User, *fields: str) -> dict[str, Any]:
    return profile_read(subject_id=user.pk, fields=fields, purpose=RIGHTS_PURPOSE, actor=Actor.person(user.pk))


def _page_text(page: Any, live_server: Any) -> str:
    page.goto(f"{live_server.url}/accounts/3rdparty/")
    return " ".join(page.inner_text("main").split())


def test_a_changed_claim_flows_in_at_sign_in_and_refresh_and_a_revoked_grant_purges(
    page, live_server, settings, committed_db, profile_schema, tmp_path
):
    settings.SOCIAL_PROVIDER_POLICIES = {}
    log = tmp_path / "provider.log"
    claims_file = log.with_name("claims.json")
    with _running_provider(live_server, log) as url:
        _use_provider(settings, url)
        page.route("**/*", _only_local)
        user = _sign_up(page, live_server, url, "margot", ["given_name", "birth_date"])
        assert _own(user, "given_name")["given_name"].value == "Marguerite"

        # Changed at the provider, then a later sign-in: a refresh.
        _change_claims(claims_file, "margot", given_name="Margo")
        page.context.clear_cookies()
        _leave_for_provider(page, live_server, url)
        _sign_in_at_provider(page, "margot")
        page.wait_for_url(lambda u: u.startswith(live_server.url) and "/oidc/" not in u)
        assert _own(user, "given_name")["given_name"].value == "Margo"

        # Changed again; the scheduled refresh (a day later) uses the sealed refresh token.
        _change_claims(claims_file, "margot", given_name="Margaux", family_name="Not-imported")
        account = SocialAccount.objects.get(user=user)
        before = social_account_read(account_id=account.pk, purpose=ACCOUNT_PURPOSE, actor=Actor.system("e2e"))
        a_day_later = timezone.now() + datetime.timedelta(hours=25)
        outcome = social_link_refresh(account_id=account.pk, now=a_day_later)
        assert (outcome.code, outcome.fields) == ("refreshed", ("given_name",))
        held = _own(user, "given_name", "family_name", "birth_date")
        assert held["given_name"].value == "Margaux"
        assert (held["given_name"].source, held["given_name"].source_name, held["given_name"].collected_at) == (
            "social",
            PROVIDER_ID,
            a_day_later,
        )
        assert "family_name" not in held and str(held["birth_date"].value) == "1984-11-23"
        earlier = [e.value for e in profile_history_read(subject_id=user.pk, actor=Actor.person(user.pk))]
        assert earlier == ["Margo", "Marguerite"]
        after = social_account_read(account_id=account.pk, purpose=ACCOUNT_PURPOSE, actor=Actor.system("e2e"))
        assert after.extra_data["userinfo"]["given_name"] == "Margaux"
        assert after.tokens[0].access_token != before.tokens[0].access_token, "a new access token, sealed"
        assert after.tokens[0].refresh_token, "the refresh token is kept"
        text = _page_text(page, live_server)
        assert "Copied into your profile: Date of birth, Given name." in text
        assert "Margaux" not in text
        _screenshot(page, "refresh-1-connected-accounts")

        # The person withdraws the grant at the provider (RFC 7009 at its revocation endpoint).
        config = requests.get(f"{url}/.well-known/openid-configuration", timeout=5).json()
        revoked = requests.post(
            config["revocation_endpoint"],
            data={
                "token": after.tokens[0].refresh_token,
                "token_type_hint": "refresh_token",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
            timeout=5,
        )
        assert revoked.status_code == 200
        two_days_later = a_day_later + datetime.timedelta(hours=25)
        assert social_link_refresh(account_id=account.pk, now=two_days_later).code == "purged"

    assert not _own(user, "given_name", "birth_date")
    assert not profile_history_read(subject_id=user.pk, actor=Actor.person(user.pk))
    assert not SealedSocialAccountData.objects.filter(account=account).exists()
    assert not SocialToken.objects.filter(account=account).exists()
    state = SocialLinkState.objects.get(account=account)
    assert (state.purge_reason, state.revoked_at) == (PurgeReason.REVOKED, two_days_later)
    text = _page_text(page, live_server)
    assert f"Your Test Provider data was removed: access was revoked on {two_days_later:%-d %B %Y}." in text
    _screenshot(page, "refresh-2-revoked")


def test_a_provider_unreachable_past_the_maximum_age_leads_to_a_purge(
    page, live_server, settings, committed_db, profile_schema, tmp_path
):
    settings.SOCIAL_PROVIDER_POLICIES = {PROVIDER_ID: {"max_age_days": 30}}
    with _running_provider(live_server, tmp_path / "provider.log") as url:
        _use_provider(settings, url)
        page.route("**/*", _only_local)
        user = _sign_up(page, live_server, url, "gone", ["given_name"])
    _use_provider(settings, f"http://127.0.0.1:{_free_port()}")  # the provider is gone: nothing listens
    account = SocialAccount.objects.get(user=user)
    since = SocialLinkState.objects.get(account=account).last_success_at

    for days in (1, 10, 29):
        outcome = social_link_refresh(account_id=account.pk, now=since + datetime.timedelta(days=days))
        assert outcome.code == "social_provider_unavailable"
        assert _own(user, "given_name")["given_name"].value == "Marguerite", "an outage deletes nothing"
    assert SocialLinkState.objects.get(account=account).failures == 3

    assert social_link_refresh(account_id=account.pk, now=since + datetime.timedelta(days=30)).code == "purged"
    assert not _own(user, "given_name")
    assert SocialLinkState.objects.get(account=account).purge_reason == PurgeReason.STALE
    text = _page_text(page, live_server)
    assert "Your Test Provider data was removed: it could not be refreshed for 30 days." in text
    assert "You can still sign in with it." in text


def test_removing_the_connection_revokes_the_grant_at_the_provider(
    page, live_server, settings, committed_db, profile_schema, tmp_path
):
    """Disconnecting in the portal withdraws the grant at the provider itself (RFC 7009 at its
    revocation endpoint): the refresh token the vault held no longer works there."""
    settings.SOCIAL_PROVIDER_POLICIES = {}
    with _running_provider(live_server, tmp_path / "provider.log") as url:
        _use_provider(settings, url)
        page.route("**/*", _only_local)
        user = _sign_up(page, live_server, url, "leaving", ["given_name"])
        user.set_password("a sturdy passphrase 42")  # another way in, so the last link may go
        user.save()
        account = SocialAccount.objects.get(user=user)
        held = social_account_read(account_id=account.pk, purpose=ACCOUNT_PURPOSE, actor=Actor.system("e2e"))
        refresh_token = held.tokens[0].refresh_token
        assert refresh_token

        page.goto(f"{live_server.url}/accounts/login/")  # a new password ends the old session
        page.fill("#id_login", user.email)
        page.fill("#id_password", "a sturdy passphrase 42")
        page.locator("form.login").get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda u: "/accounts/login/" not in u)
        page.goto(f"{live_server.url}/accounts/3rdparty/")
        page.check(f"#id_account_{account.pk}")
        page.click("button:has-text('Remove the connection')")
        page.wait_for_load_state()
        assert not SocialAccount.objects.filter(pk=account.pk).exists(), (page.url, page.inner_text("main")[:800])

        config = requests.get(f"{url}/.well-known/openid-configuration", timeout=5).json()
        answer = requests.post(
            config["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
            timeout=5,
        )
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant", answer.text
    assert not _own(user, "given_name"), "what the provider brought went with it"
