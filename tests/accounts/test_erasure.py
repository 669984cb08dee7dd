"""Erasing an account (accounts/services.py, accounts/social/revocation.py): signing in stops and
every session ends at once; provider grants are revoked at the provider (a real HTTP server on
127.0.0.1 plays an OpenID Connect provider); then every row of the account goes."""

import base64
import json
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialToken
from allauth.usersessions.models import UserSession
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import authenticate
from django.contrib.sessions.models import Session
from django.db import models
from django.test import Client

from accounts.models import SealedSocialToken, User
from accounts.services import account_erase, account_erasure_begin
from accounts.social import social_tokens_revoke
from tests.factories import PASSWORD, add_totp
from vault.models import AuditEntry
from vault.services import subject_keys_shred

pytestmark = pytest.mark.django_db

PROVIDER_ID = "stubidp"
CLIENT_ID, SECRET = "vault-stub", "stub-secret"
ACCESS, REFRESH = "access-51c0ffee9d", "refresh-7e4b1d2a3f"


# --- Signing in stops, sessions end ---------------------------------------------------------------
def _with_address(person: User) -> User:
    EmailAddress.objects.create(user=person, email=person.email, verified=True, primary=True)
    return person


def _app_login(person: User) -> Any:
    return Client().post(
        "/_allauth/app/v1/auth/login", {"email": person.email, "password": PASSWORD}, content_type="application/json"
    )


def _app_token(person: User) -> str:
    response = _app_login(person)
    assert response.status_code == 200, response.content
    return response.json()["meta"]["session_token"]


def _browser(person: User) -> Client:
    browser = Client()
    response = browser.post("/accounts/login/", {"login": person.email, "password": PASSWORD})
    assert response.status_code == 302, "signed in"
    return browser


def _signed_in_browser(browser: Client) -> bool:
    return browser.get("/api/v1/me/").status_code == 200


def _signed_in_app(token: str) -> bool:
    return Client().get("/_allauth/app/v1/auth/session", headers={"X-Session-Token": token}).status_code == 200


def test_beginning_an_erasure_ends_every_session_and_stops_signing_in(alice, bob):
    _with_address(alice)
    _with_address(bob)
    browser, app = _browser(alice), _app_token(alice)
    bobs_browser, bobs_app = _browser(bob), _app_token(bob)
    assert _signed_in_browser(browser) and _signed_in_app(app)
    assert UserSession.objects.filter(user=alice).count() == 2, "allauth names both sessions"

    account_erasure_begin(subject_id=alice.pk)

    assert not _signed_in_browser(browser), "the old cookie is anonymous"
    assert not _signed_in_app(app), "the app's session token names no session"
    assert not UserSession.objects.filter(user=alice).exists()
    assert Session.objects.count() == 2, "only Bob's two sessions are left"
    assert _app_login(alice).status_code != 200, "the right password no longer signs in"
    assert Client().login(email=alice.email, password=PASSWORD) is False
    assert authenticate(email=alice.email, password=PASSWORD) is None
    alice.refresh_from_db()
    assert not alice.is_active and not alice.has_usable_password()
    assert _signed_in_browser(bobs_browser) and _signed_in_app(bobs_app), "nobody else is signed out"


def test_a_session_allauth_does_not_list_no_longer_authenticates_either(alice):
    """Deactivating the account is what makes any session anonymous, listed or not."""
    browser = Client()
    browser.force_login(alice)
    UserSession.objects.filter(user=alice).delete()  # as if the listing had lost it
    account_erasure_begin(subject_id=alice.pk)
    assert Session.objects.count() == 1
    assert not _signed_in_browser(browser)


def test_beginning_an_erasure_takes_the_same_queries_for_one_session_or_many(alice, bob, django_assert_max_num_queries):
    Client().force_login(alice)
    for _ in range(6):
        Client().force_login(bob)
    with django_assert_max_num_queries(10) as one:
        account_erasure_begin(subject_id=alice.pk)
    with django_assert_max_num_queries(len(one.captured_queries)):
        account_erasure_begin(subject_id=bob.pk)
    assert not Session.objects.exists()


# --- Provider tokens revoked ------------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StubProvider(ThreadingHTTPServer):
    """An OpenID Connect provider's discovery document and RFC 7009 revocation endpoint,
    recording every revocation request it receives."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.revocations: list[dict[str, Any]] = []
        self.offers_revocation = True
        self.auth_methods: list[str] | None = None
        self.revocation_status = 200


class _Handler(BaseHTTPRequestHandler):
    server: StubProvider

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path != "/.well-known/openid-configuration":
            return self._send(404, {})
        config: dict[str, Any] = {"issuer": self.server.url, "token_endpoint": f"{self.server.url}/token"}
        if self.server.offers_revocation:
            config["revocation_endpoint"] = f"{self.server.url}/revoke"
        if self.server.auth_methods is not None:
            config["revocation_endpoint_auth_methods_supported"] = self.server.auth_methods
        return self._send(200, config)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        if self.path != "/revoke":
            return self._send(404, {})
        form = {key: values[0] for key, values in parse_qs(body).items()}
        self.server.revocations.append({"form": form, "authorization": self.headers.get("Authorization", "")})
        return self._send(self.server.revocation_status, {})


def _configure(settings, server_url: str) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": PROVIDER_ID,
                    "name": "Stub IdP",
                    "client_id": CLIENT_ID,
                    "secret": SECRET,
                    "settings": {"server_url": server_url},
                }
            ]
        }
    }


@pytest.fixture
def provider(settings) -> Iterator[StubProvider]:
    server = StubProvider()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _configure(settings, server.url)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _link(person: User, provider: str = PROVIDER_ID, uid: str = "kim-1") -> SocialAccount:
    """A linked account with an access and a refresh token (sealed as allauth saves them)."""
    account = SocialAccount.objects.create(user=person, provider=provider, uid=uid, extra_data={"sub": uid})
    SocialToken.objects.create(account=account, token=ACCESS, token_secret=REFRESH)
    return account


def test_tokens_are_revoked_at_the_openid_connect_providers_revocation_endpoint(alice, provider):
    _link(alice)
    assert social_tokens_revoke(subject_id=alice.pk) == [PROVIDER_ID]

    basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    assert provider.revocations == [
        {"form": {"token": REFRESH, "token_type_hint": "refresh_token"}, "authorization": basic},
        {"form": {"token": ACCESS, "token_type_hint": "access_token"}, "authorization": basic},
    ]
    unseal = AuditEntry.objects.get(action="social.unseal")
    assert (unseal.purpose, unseal.actor_type) == ("data-subject-rights", "system"), "read through the gate"


def test_a_provider_that_takes_only_posted_secrets_gets_them_in_the_body(alice, provider):
    provider.auth_methods = ["client_secret_post"]
    _link(alice)
    assert social_tokens_revoke(subject_id=alice.pk) == [PROVIDER_ID]
    first = provider.revocations[0]
    assert first["authorization"] == ""
    assert first["form"] == {
        "token": REFRESH,
        "token_type_hint": "refresh_token",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }


def test_the_client_authenticates_as_at_the_token_endpoint(alice, provider, settings):
    """RFC 7009 2.1: as allauth does at the token endpoint, the secret goes in the body when the
    provider takes both ways, and HTTP basic when the app's `token_auth_method` says so."""
    provider.auth_methods = ["client_secret_basic", "client_secret_post"]
    _link(alice)
    social_tokens_revoke(subject_id=alice.pk)
    assert provider.revocations[0]["authorization"] == ""
    assert provider.revocations[0]["form"]["client_secret"] == SECRET

    provider.revocations.clear()
    app = settings.SOCIALACCOUNT_PROVIDERS["openid_connect"]["APPS"][0]
    app["settings"] = {**app["settings"], "token_auth_method": "client_secret_basic"}
    social_tokens_revoke(subject_id=alice.pk)
    assert provider.revocations[0]["authorization"].startswith("Basic ")
    assert "client_secret" not in provider.revocations[0]["form"]


def test_a_provider_that_is_down_is_logged_without_personal_data_and_stops_nothing(alice, settings, caplog):
    _configure(settings, f"http://127.0.0.1:{_closed_port()}")
    account = _link(alice)
    with caplog.at_level(logging.INFO, logger="accounts.social.revocation"):
        assert social_tokens_revoke(subject_id=alice.pk) == []
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert PROVIDER_ID in message and str(account.pk) in message and "ConnectionError" in message
    for secret in (ACCESS, REFRESH, alice.email, str(alice.pk), SECRET):
        assert secret not in message


def test_a_refused_revocation_is_logged_and_the_other_accounts_are_still_revoked(alice, provider, settings, caplog):
    down_url = f"http://127.0.0.1:{_closed_port()}"
    down_app = {"provider_id": "downidp", "name": "Down", "client_id": "c", "secret": "s"}
    apps_configured = settings.SOCIALACCOUNT_PROVIDERS["openid_connect"]["APPS"]
    apps_configured.append({**down_app, "settings": {"server_url": down_url}})
    down = _link(alice, provider="downidp", uid="down-1")
    _link(alice)
    with caplog.at_level(logging.WARNING, logger="accounts.social.revocation"):
        assert social_tokens_revoke(subject_id=alice.pk) == [PROVIDER_ID]
    assert [r.getMessage() for r in caplog.records] == [
        f"Revoking the grant at provider downidp failed for social account {down.pk}: ConnectionError"
    ]
    provider.revocation_status = 503
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="accounts.social.revocation"):
        assert social_tokens_revoke(subject_id=alice.pk) == []
    assert any("HTTPError HTTP 503" in r.getMessage() for r in caplog.records)


def test_a_provider_without_a_revocation_endpoint_is_not_counted(alice, provider):
    provider.offers_revocation = False
    _link(alice)
    assert social_tokens_revoke(subject_id=alice.pk) == []
    assert provider.revocations == []


def test_once_the_keys_are_destroyed_nothing_can_be_revoked_and_nothing_breaks(alice, provider, caplog):
    _link(alice)
    subject_keys_shred(subject_id=alice.pk, actor_type="system", actor_id="test")
    assert social_tokens_revoke(subject_id=alice.pk) == []
    assert provider.revocations == []


def test_providers_without_revocation_and_accounts_without_tokens_are_skipped(alice, settings, monkeypatch, caplog):
    import accounts.social.revocation

    settings.SOCIALACCOUNT_PROVIDERS = {
        "github": {"APPS": [{"client_id": "g", "secret": "s"}]},
        "google": {"APPS": [{"client_id": "o", "secret": "s"}]},
    }
    monkeypatch.delitem(accounts.social.revocation.REVOKERS, "github")  # as a provider without revocation
    _link(alice, provider="github")
    SocialAccount.objects.create(user=alice, provider="google", uid="no-tokens")
    with caplog.at_level(logging.INFO, logger="accounts.social.revocation"):
        assert social_tokens_revoke(subject_id=alice.pk) == []
    assert social_tokens_revoke(subject_id=uuid.uuid4()) == []
    assert caplog.records == [], "skipped, not failed"


# --- The account's rows deleted -------------------------------------------------------------------
ALLAUTH_AND_OURS = ("accounts", "account", "socialaccount", "mfa", "usersessions", "admin", "auth")


def _rows_naming(person_id: uuid.UUID, email: str) -> dict[str, int]:
    """Rows of the identity tables (ours, allauth's, Django's auth and admin) whose columns hold
    the person's id (a UUID, a foreign key, or text) or address: every column is looked at, so a
    table added later is covered. Sessions are checked apart (their data is encoded)."""
    found: dict[str, int] = {}
    for label in ALLAUTH_AND_OURS:
        for model in apps.get_app_config(label).get_models(include_auto_created=True):
            condition = models.Q(pk__in=[])
            for field in model._meta.concrete_fields:
                if field.related_model is User or isinstance(field, models.UUIDField):
                    condition |= models.Q(**{field.attname: person_id})
                elif isinstance(field, models.CharField | models.TextField) and not field.choices:
                    condition |= models.Q(**{field.attname: str(person_id)}) | models.Q(**{field.attname: email})
            if count := model._default_manager.filter(condition).count():
                found[model._meta.label] = count
    return found


def _sessions_of(person_id: uuid.UUID) -> int:
    return sum(1 for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(person_id))


def test_erasing_an_account_leaves_no_row_of_it_and_nobody_elses_changes(alice, bob, staff, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {}
    for person in (alice, bob):
        _with_address(person)
        _link(person, provider="github", uid=str(person.pk))
        _browser(person)
        _app_token(person)
        add_totp(person)  # after signing in, which would otherwise wait for the code
    alice.groups.create(name="testers")
    address = EmailAddress.objects.get(user=alice)
    LogEntry.objects.log_actions(user_id=staff.pk, queryset=[address], action_flag=CHANGE, change_message="[]")
    LogEntry.objects.log_actions(user_id=staff.pk, queryset=[alice], action_flag=CHANGE, change_message="[]")
    assert LogEntry.objects.filter(object_repr=alice.email).exists(), "the admin's log quotes the address"
    bob_rows = _rows_naming(bob.pk, bob.email)
    assert set(_rows_naming(alice.pk, alice.email)) >= {
        "accounts.User",
        "accounts.SealedSocialToken",
        "accounts.SealedSocialAccountData",
        "account.EmailAddress",
        "socialaccount.SocialAccount",
        "mfa.Authenticator",
        "usersessions.UserSession",
        "admin.LogEntry",
        "accounts.User_groups",
    }
    assert _sessions_of(alice.pk) == 2

    account_erasure_begin(subject_id=alice.pk)
    account_erase(subject_id=alice.pk)

    assert _rows_naming(alice.pk, alice.email) == {}
    assert _sessions_of(alice.pk) == 0
    assert not SocialToken.objects.filter(account__user_id=alice.pk).exists()
    assert _rows_naming(bob.pk, bob.email) == bob_rows
    assert _sessions_of(bob.pk) == 2
    assert SealedSocialToken.objects.filter(subject_id=bob.pk).count() == 1


def test_erasing_ends_sessions_even_without_the_first_step_and_is_idempotent(alice):
    _with_address(alice)
    token = _app_token(alice)
    account_erase(subject_id=alice.pk)
    assert not _signed_in_app(token)
    assert not User.objects.filter(pk=alice.pk).exists()
    account_erase(subject_id=alice.pk)  # nothing left: nothing happens
    account_erasure_begin(subject_id=alice.pk)
    assert not User.objects.filter(pk=alice.pk).exists()
