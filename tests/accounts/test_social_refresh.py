"""Scheduled refresh of social-provider data, its maximum age and the purge (accounts/social/
refresh.py), against a real HTTP server on 127.0.0.1 standing in for the provider's discovery,
token and userinfo endpoints (GitHub's and Facebook's too, with their URLs pointed at it)."""

import contextlib
import datetime
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount, SocialToken
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from accounts import tasks
from accounts.models import PurgeReason, SealedSocialAccountData, SealedSocialToken, SocialLinkState
from accounts.social import fetch as fetch_module
from accounts.social import (
    provider_policy,
    social_account_read,
    social_link_refresh,
    social_links_claim,
    social_links_expire,
)
from accounts.social.policies import social_policy_overrides_from_env
from profiles.gate import ACCOUNT_PURPOSE, RIGHTS_PURPOSE, Actor, profile_history_read, profile_read, profile_write
from profiles.models import ProfileValue, ProfileValueHistory, Source
from tests.factories import fill
from vault.models import AuditEntry

pytestmark = pytest.mark.usefixtures("profile_schema")

PROVIDER = "loopidp"
SUB = "sub-4711"
ACCESS, REFRESH = "access-1-a8f3e2", "refresh-1-c4d9b0"
CLAIMS = {"sub": SUB, "email": "m@example.test", "given_name": "Marguerite", "family_name": "Oidcperson"}


class Provider:
    """What the loopback provider answers; changed by each test. Records what it was asked."""

    def __init__(self) -> None:
        self.token_status = 200
        self.token_body: dict[str, Any] = {"access_token": "access-2-f00d", "token_type": "Bearer", "expires_in": 3600}
        self.userinfo_status = 200
        self.userinfo: dict[str, Any] = dict(CLAIMS)
        self.delay = 0.0
        self.requests: list[tuple[str, str, dict[str, list[str]], dict[str, str]]] = []


def _handler(provider: Provider, base: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError):  # the client gave up waiting (the timeout test)
                self.wfile.write(payload)

        def _route(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode()) if length else {}
            path = urlsplit(self.path).path
            provider.requests.append((method, self.path, form, dict(self.headers)))
            if provider.delay:
                time.sleep(provider.delay)
            if path == "/.well-known/openid-configuration":
                self._send(
                    200,
                    {
                        "issuer": base[0],
                        "token_endpoint": f"{base[0]}/token",
                        "userinfo_endpoint": f"{base[0]}/me",
                        "revocation_endpoint": f"{base[0]}/revoke",
                    },
                )
            elif path in ("/token", "/oauth/access_token"):
                self._send(provider.token_status, provider.token_body)
            elif path in ("/me", "/user"):
                self._send(provider.userinfo_status, provider.userinfo)
            elif path == "/revoke":
                self._send(200, {})
            else:
                self._send(404, {"error": "not_found"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

    return Handler


@pytest.fixture
def provider(settings) -> Iterator[Provider]:
    state = Provider()
    base: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, base))
    base.append(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": PROVIDER,
                    "name": "Loop IdP",
                    "client_id": "vault-loop",
                    "secret": "loop-client-secret",
                    "settings": {"server_url": base[0], "fetch_userinfo": True},
                }
            ]
        },
        "github": {"APPS": [{"client_id": "vault-gh", "secret": "gh-secret"}]},
        "facebook": {"APPS": [{"client_id": "vault-fb", "secret": "fb-secret"}]},
    }
    settings.SOCIAL_PROVIDER_POLICIES = {}
    settings.SOCIALACCOUNT_REQUESTS_TIMEOUT = 1
    state.url = base[0]  # type: ignore[attr-defined]
    yield state
    server.shutdown()
    server.server_close()


def link(person, *, provider_id: str = PROVIDER, uid: str = SUB, answer: dict[str, Any] | None = None, **imported):
    """A linked account as a sign-up leaves it: sealed answer and tokens, imported values."""
    account = SocialAccount(
        user=person, provider=provider_id, uid=uid, extra_data=answer or {"userinfo": dict(CLAIMS), "id_token": {}}
    )
    account.save()
    SocialToken(
        account=account, token=ACCESS, token_secret=REFRESH, expires_at=timezone.now() + datetime.timedelta(hours=1)
    ).save()
    if imported:
        profile_write(
            subject_id=person.pk,
            values=imported,
            source=Source.SOCIAL,
            source_name=provider_id,
            purpose=RIGHTS_PURPOSE,
            actor=Actor.person(person.pk),
        )
    return account


def own(person, *fields):
    return profile_read(subject_id=person.pk, fields=fields, purpose=RIGHTS_PURPOSE, actor=Actor.person(person.pk))


def later(**delta) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(**delta)


def tokens_of(account):
    [token] = social_account_read(account_id=account.pk, purpose=ACCOUNT_PURPOSE, actor=Actor.system("test")).tokens
    return token


# --- A successful refresh ------------------------------------------------------------------------
def test_a_changed_claim_updates_the_imported_value_with_history_and_provenance(provider, alice):
    account = link(alice, given_name="Marguerite")
    fill(alice, family_name="Typed-by-hand")  # the person's own value: never touched by a refresh
    provider.userinfo = {**CLAIMS, "given_name": "Margot", "family_name": "Changed", "birthdate": "1984-11-23"}
    now = later(hours=25)

    outcome = social_link_refresh(account_id=account.pk, now=now)

    assert (outcome.code, outcome.fields) == ("refreshed", ("given_name",))
    held = own(alice, "given_name", "family_name", "birth_date")
    assert held["given_name"].value == "Margot"
    assert (held["given_name"].source, held["given_name"].source_name) == ("social", PROVIDER)
    assert held["given_name"].collected_at == now
    assert held["family_name"].value == "Typed-by-hand" and held["family_name"].source == Source.SELF_SERVICE
    assert "birth_date" not in held, "a claim the person did not import stays out"
    [earlier] = profile_history_read(subject_id=alice.pk, actor=Actor.person(alice.pk))
    assert (earlier.key, earlier.value, earlier.source, earlier.source_name) == (
        "given_name",
        "Marguerite",
        "social",
        PROVIDER,
    )

    # The refresh token grant was used, as the client (client_secret_post), and the new access
    # token fetched userinfo; the new answer and token are sealed, the refresh token kept.
    token_call = next(r for r in provider.requests if r[1] == "/token")
    assert token_call[2]["grant_type"] == ["refresh_token"] and token_call[2]["refresh_token"] == [REFRESH]
    assert token_call[2]["client_id"] == ["vault-loop"]
    userinfo_call = next(r for r in provider.requests if r[1] == "/me")
    assert userinfo_call[3]["Authorization"] == "Bearer access-2-f00d"
    assert all(ACCESS not in r[1] and REFRESH not in r[1] for r in provider.requests), "no token in a URL"
    token = tokens_of(account)
    assert (token.access_token, token.refresh_token) == ("access-2-f00d", REFRESH)
    sealed = social_account_read(account_id=account.pk, purpose=ACCOUNT_PURPOSE, actor=Actor.system("test"))
    assert sealed.extra_data["userinfo"]["given_name"] == "Margot"
    assert SocialAccount.objects.filter(pk=account.pk, extra_data={}).exists()
    assert SocialToken.objects.filter(account=account, token="", token_secret="").exists()

    state = SocialLinkState.objects.get(account=account)
    assert (state.last_success_at, state.failures) == (now, 0)
    assert state.next_refresh_at == now + datetime.timedelta(hours=24)
    entry = AuditEntry.objects.filter(action="social.refresh").get()
    assert "profile.given_name" in entry.fields and "social.access_token" in entry.fields
    assert "Margot" not in json.dumps(list(AuditEntry.objects.values_list("fields", flat=True)))


def test_a_rotated_refresh_token_replaces_the_sealed_one(provider, alice):
    account = link(alice)
    provider.token_body = {**provider.token_body, "refresh_token": "refresh-2-rotated"}
    assert social_link_refresh(account_id=account.pk, now=later(hours=25)).code == "refreshed"
    assert tokens_of(account).refresh_token == "refresh-2-rotated"


def test_an_unchanged_answer_only_counts_as_collected_again(provider, alice):
    account = link(alice, given_name="Marguerite")
    before = ProfileValue.objects.get(subject_id=alice.pk)
    when = later(hours=25)

    assert social_link_refresh(account_id=account.pk, now=when).fields == ()

    after = ProfileValue.objects.get(subject_id=alice.pk)
    assert after.value == before.value, "not re-sealed: the value did not change"
    assert after.collected_at == when, "collected again now"
    assert after.expires_at - before.expires_at == when - before.collected_at, "its retention runs from now"
    assert not ProfileValueHistory.objects.exists()


def test_only_fields_the_policy_allows_are_refreshed(provider, alice, settings):
    account = link(alice, given_name="Marguerite", family_name="Oidcperson")
    settings.SOCIAL_PROVIDER_POLICIES = {PROVIDER: {"fields": ["family_name"]}}
    provider.userinfo = {**CLAIMS, "given_name": "Margot", "family_name": "Newname"}

    assert social_link_refresh(account_id=account.pk, now=later(hours=25)).fields == ("family_name",)
    held = own(alice, "given_name", "family_name")
    assert (held["given_name"].value, held["family_name"].value) == ("Marguerite", "Newname")


def test_an_answer_about_another_subject_is_not_taken(provider, alice):
    account = link(alice, given_name="Marguerite")
    provider.userinfo = {**CLAIMS, "sub": "someone-else", "given_name": "Eve"}

    assert social_link_refresh(account_id=account.pk, now=later(hours=25)).code == "social_provider_refused"
    assert own(alice, "given_name")["given_name"].value == "Marguerite"


# --- Revoked: purged at once ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("where", "status", "body"),
    [("token", 400, {"error": "invalid_grant"}), ("userinfo", 401, {"error": "invalid_token"})],
)
def test_a_revoked_grant_purges_what_the_provider_brought(provider, alice, bob, where, status, body):
    account = link(alice, given_name="Marguerite", city="Leiden")
    fill(alice, family_name="Typed-by-hand")
    bobs = link(bob, uid="sub-bob", given_name="Bob")
    if where == "token":
        provider.token_status, provider.token_body = status, body
    else:
        provider.userinfo_status, provider.userinfo = status, body
    now = later(hours=25)

    assert social_link_refresh(account_id=account.pk, now=now).code == "purged"

    assert set(own(alice, "given_name", "city", "family_name")) == {"family_name"}
    assert not SealedSocialAccountData.objects.filter(account=account).exists()
    assert not SocialToken.objects.filter(account=account).exists()
    assert not SealedSocialToken.objects.filter(subject_id=alice.pk).exists()
    assert SocialAccount.objects.filter(pk=account.pk).exists(), "the link stays: a way to sign in"
    state = SocialLinkState.objects.get(account=account)
    assert (state.purged_at, state.revoked_at, state.purge_reason) == (now, now, PurgeReason.REVOKED)
    assert state.next_refresh_at is None
    entry = AuditEntry.objects.get(action="social.purged_revoked")
    assert entry.fields == ["social.extra_data", "social.access_token", "social.refresh_token"]
    assert AuditEntry.objects.filter(action="profile.source_purge").exists()
    # Another person's link to the same provider is untouched.
    assert own(bob, "given_name")["given_name"].value == "Bob"
    assert SealedSocialAccountData.objects.filter(account=bobs).exists()
    # A purged link is not refreshed again.
    assert social_link_refresh(account_id=account.pk, now=later(hours=50)).code == "skipped"


# --- An outage: nothing deleted, retried with backoff ---------------------------------------------
def test_a_provider_error_deletes_nothing_and_is_retried_with_backoff(provider, alice):
    account = link(alice, given_name="Marguerite")
    provider.token_status, provider.token_body = 503, {"error": "temporarily_unavailable"}
    first = later(hours=25)

    assert social_link_refresh(account_id=account.pk, now=first).code == "social_provider_unavailable"
    state = SocialLinkState.objects.get(account=account)
    assert (state.failures, state.next_refresh_at) == (1, first + datetime.timedelta(minutes=5))
    second = first + datetime.timedelta(minutes=5)
    social_link_refresh(account_id=account.pk, now=second)
    state.refresh_from_db()
    assert (state.failures, state.next_refresh_at) == (2, second + datetime.timedelta(minutes=10))

    assert own(alice, "given_name")["given_name"].value == "Marguerite"
    assert tokens_of(account).refresh_token == REFRESH
    assert state.purged_at is None
    assert AuditEntry.objects.filter(action="social.refresh_failed").count() == 2

    provider.token_status, provider.token_body = 200, {"access_token": "access-3", "expires_in": 60}
    assert social_link_refresh(account_id=account.pk, now=second + datetime.timedelta(minutes=10)).code == "refreshed"
    state.refresh_from_db()
    assert (state.failures, state.last_error) == (0, "")


def test_a_provider_that_does_not_answer_in_time_deletes_nothing(provider, alice):
    account = link(alice, given_name="Marguerite")
    provider.delay = 2.5  # SOCIALACCOUNT_REQUESTS_TIMEOUT is 1 s here

    assert social_link_refresh(account_id=account.pk, now=later(hours=25)).code == "social_provider_unavailable"
    assert own(alice, "given_name")["given_name"].value == "Marguerite"
    assert SealedSocialAccountData.objects.filter(account=account).exists()
    assert SocialLinkState.objects.get(account=account).failures == 1


# --- Maximum age --------------------------------------------------------------------------------
def test_failing_past_the_maximum_age_purges(provider, alice):
    account = link(alice, given_name="Marguerite")
    since = SocialLinkState.objects.get(account=account).last_success_at
    provider.token_status = 502
    max_age = provider_policy(PROVIDER).max_age
    assert max_age == datetime.timedelta(days=90)

    just_before = since + max_age - datetime.timedelta(minutes=1)
    assert social_link_refresh(account_id=account.pk, now=just_before).code == "social_provider_unavailable"
    assert own(alice, "given_name")

    assert social_link_refresh(account_id=account.pk, now=since + max_age).code == "purged"
    assert not own(alice, "given_name")
    state = SocialLinkState.objects.get(account=account)
    assert (state.purge_reason, state.revoked_at) == (PurgeReason.STALE, None)
    revoked = [form.get("token") for method, path, form, _ in provider.requests if path == "/revoke"]
    assert revoked and all(revoked), "the grant that could fetch it again is revoked at the provider first"
    assert AuditEntry.objects.filter(action="social.purged_stale").count() == 1


def test_the_sweep_purges_links_past_their_maximum_age_even_unscheduled(provider, alice, settings):
    settings.SOCIAL_PROVIDER_POLICIES = {PROVIDER: {"refresh_hours": 0, "max_age_days": 10}}
    account = link(alice, given_name="Marguerite")
    assert SocialLinkState.objects.get(account=account).next_refresh_at is None

    assert social_links_expire(limit=10, now=later(days=9)) == 0
    assert social_links_expire(limit=10, now=later(days=10, minutes=1)) == 1
    assert not own(alice, "given_name")
    assert social_links_expire(limit=10, now=later(days=11)) == 0, "purged once"


# --- Claiming and the beat task -----------------------------------------------------------------
def test_two_workers_never_claim_the_same_link(provider, alice, bob):
    first, second = link(alice), link(bob, uid="sub-bob")
    now = later(hours=25)
    assert social_links_claim(limit=10, now=now) == [first.pk, second.pk]
    assert social_links_claim(limit=10, now=now) == [], "claimed: not due again until the lease ends"
    assert sorted(social_links_claim(limit=1, now=now + datetime.timedelta(minutes=16))) == [first.pk]
    assert social_links_claim(limit=10, now=later(hours=1)) == [], "not due yet"


def test_the_beat_task_refreshes_due_links(provider, alice, monkeypatch):
    from config.celery import app

    account = link(alice, given_name="Marguerite")
    provider.userinfo = {**CLAIMS, "given_name": "Margot"}
    SocialLinkState.objects.filter(account=account).update(next_refresh_at=timezone.now())

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the per-link tasks it enqueues run here too, whatever the broker
    try:
        assert tasks.social_refresh_run.apply().get() == {"expired": 0, "claimed": 1}
    finally:
        app.conf.task_always_eager = before
    assert own(alice, "given_name")["given_name"].value == "Margot"


def test_links_made_before_this_feature_get_a_state(provider, alice):
    account = link(alice)
    SocialLinkState.objects.all().delete()
    assert social_links_claim(limit=10, now=later(hours=25)) == [account.pk]
    assert SocialLinkState.objects.get(account=account).subject_id == alice.pk


# --- GitHub and Facebook -------------------------------------------------------------------------
def test_github_is_re_read_with_the_stored_token(provider, alice, monkeypatch):
    monkeypatch.setattr(fetch_module, "GITHUB_USER_URL", f"{provider.url}/user")
    account = link(alice, provider_id="github", uid="42", answer={"id": 42, "name": "Sam Okafor"}, city="Lagos")
    provider.userinfo = {"id": 42, "name": "Sam Okafor", "location": "Accra, Ghana"}

    assert social_link_refresh(account_id=account.pk, now=later(days=8)).fields == ("city",)
    assert own(alice, "city")["city"].value == "Accra"
    [call] = provider.requests
    assert call[3]["Authorization"] == f"token {ACCESS}"
    provider.userinfo_status, provider.userinfo = 401, {"message": "Bad credentials"}
    assert social_link_refresh(account_id=account.pk, now=later(days=16)).code == "purged"


def test_facebook_exchanges_the_long_lived_token(provider, alice, monkeypatch):
    monkeypatch.setattr(fetch_module, "FACEBOOK_TOKEN_URL", f"{provider.url}/oauth/access_token")
    monkeypatch.setattr(fetch_module, "FACEBOOK_ME_URL", f"{provider.url}/me")
    answer = {"id": "77", "first_name": "Ines"}
    account = link(alice, provider_id="facebook", uid="77", answer=answer, given_name="Ines")
    provider.token_body = {"access_token": "fb-long-lived-2", "expires_in": 5_184_000}
    provider.userinfo = {"id": "77", "first_name": "Inês"}

    assert social_link_refresh(account_id=account.pk, now=later(hours=25)).fields == ("given_name",)
    exchange = next(r for r in provider.requests if r[1] == "/oauth/access_token")
    assert exchange[2]["grant_type"] == ["fb_exchange_token"] and exchange[2]["fb_exchange_token"] == [ACCESS]
    assert tokens_of(account).access_token == "fb-long-lived-2"
    provider.token_status, provider.token_body = 400, {"error": {"code": 190, "type": "OAuthException"}}
    assert social_link_refresh(account_id=account.pk, now=later(hours=50)).code == "purged"


# --- Policies ------------------------------------------------------------------------------------
def test_policies_have_defaults_per_provider_and_overrides_from_the_environment(provider, settings):
    assert provider_policy("facebook").max_age == datetime.timedelta(days=60)
    assert provider_policy("facebook").can_revoke and provider_policy("github").can_revoke
    assert provider_policy("github").refresh_every == datetime.timedelta(days=7)
    assert "birth_date" not in provider_policy("github").fields
    assert provider_policy(PROVIDER).kind == "openid_connect"
    assert provider_policy("not-configured").refresh_every is None

    env = {
        "SOCIAL_OIDC_PROVIDERS": "loop-idp",
        "SOCIAL_OIDC_LOOP_IDP_REFRESH_HOURS": "6",
        "SOCIAL_GITHUB_MAX_AGE_DAYS": "14",
        "SOCIAL_FACEBOOK_IMPORT_FIELDS": "given_name,city",
    }
    overrides = social_policy_overrides_from_env(env)
    assert overrides["loop-idp"]["refresh_hours"] == 6
    assert overrides["github"]["max_age_days"] == 14
    assert overrides["facebook"]["fields"] == ["given_name", "city"]
    settings.SOCIAL_PROVIDER_POLICIES = overrides
    assert provider_policy("facebook").fields == frozenset({"given_name", "city"})

    for bad in (
        {"SOCIAL_GITHUB_REFRESH_HOURS": "many"},
        {"SOCIAL_GITHUB_MAX_AGE_DAYS": "0"},
        {"SOCIAL_GITHUB_REFRESH_HOURS": "240", "SOCIAL_GITHUB_MAX_AGE_DAYS": "5"},
        {"SOCIAL_GITHUB_IMPORT_FIELDS": "given_name,password"},
    ):
        with pytest.raises(ImproperlyConfigured):
            social_policy_overrides_from_env(bad)


# --- The connected-accounts page ------------------------------------------------------------------
def test_the_page_shows_last_refresh_imported_fields_and_the_removal_date(provider, client, alice, bob):
    account = link(alice, given_name="Marguerite", city="Leiden")
    state = SocialLinkState.objects.get(account=account)
    may_3 = datetime.datetime(2026, 5, 3, 12, tzinfo=datetime.UTC)
    SocialLinkState.objects.filter(pk=state.pk).update(last_success_at=may_3)
    client.force_login(alice)

    page = " ".join(client.get("/accounts/3rdparty/").content.decode().split())

    assert "Last refreshed on 3 May 2026." in page
    assert "Copied into your profile: City, Given name." in page
    assert "Marguerite" not in page and "Leiden" not in page, "labels, never values"
    assert "What it sent us is removed on 1 August 2026 unless it can be refreshed before then." in page

    client.force_login(bob)
    assert "Copied into your profile" not in client.get("/accounts/3rdparty/").content.decode(), "another person's"


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        (PurgeReason.REVOKED, "Your Loop IdP data was removed: access was revoked on 3 May 2026."),
        (PurgeReason.STALE, "Your Loop IdP data was removed: it could not be refreshed for 90 days."),
    ],
)
def test_the_page_says_why_a_providers_data_was_removed(provider, client, alice, reason, said):
    from accounts.social import social_link_purge

    account = link(alice, given_name="Marguerite")
    social_link_purge(
        account_id=account.pk,
        reason=reason,
        actor=Actor.system("test"),
        now=datetime.datetime(2026, 5, 3, 12, tzinfo=datetime.UTC),
    )
    client.force_login(alice)
    page = client.get("/accounts/3rdparty/").content.decode()
    assert said in " ".join(page.split())
    assert "Copied into your profile" not in page


def test_while_processing_is_restricted_nothing_is_fetched_written_or_purged(provider, alice, settings):
    from profiles.gate import Actor
    from profiles.services import profile_restrict

    settings.SOCIAL_PROVIDER_POLICIES = {PROVIDER: {"max_age_days": 10}}
    account = link(alice, given_name="Marguerite")
    profile_restrict(subject_id=alice.pk, actor=Actor.person(alice.pk))
    provider.userinfo = {**CLAIMS, "given_name": "Margot"}

    assert social_link_refresh(account_id=account.pk, now=later(hours=25)).code == "restricted"
    assert not provider.requests, "the provider is not even asked"
    assert social_links_expire(limit=10, now=later(days=30)) == 0
    assert own(alice, "given_name"), "kept, only stored, while the restriction lasts"
