"""Social login: sealed provider data, consent to import, bad provider answers (network off:
the provider's HTTP answers are faked at allauth's requests session)."""

import datetime
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
import pytest
import requests
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialToken
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from accounts.models import SealedSocialAccountData, SealedSocialToken, User
from accounts.social import SocialAccountAdapter, social_account_read
from accounts.social_providers import social_providers_from_env
from profiles.gate import (
    ACCOUNT_PURPOSE,
    RIGHTS_PURPOSE,
    Actor,
    profile_history_read,
    profile_read,
    social_account_unseal,
)
from vault.models import DataKey

IDP = "https://idp.test"
ACCESS = "access-3f9a1c7e5b2d"
REFRESH = "refresh-8e1b4d2a6c0f"
USERINFO = {
    "sub": "user-4711",
    "email": "robin.social@example.com",
    "email_verified": True,
    "name": "Robin Quartermaine",
    "given_name": "Robin",
    "family_name": "Quartermaine",
    "birthdate": "1987-03-14",
    "address": {"locality": "Utrecht", "country": "NL"},
}
SECRETS = [ACCESS, REFRESH, USERINFO["name"], "Quartermaine", USERINFO["birthdate"], "Utrecht"]
# The authorization requests made so far, by state: the fake provider binds each code to one,
# as a real provider does, and echoes its nonce into the ID token.
AUTHORIZATIONS: dict[str, dict[str, str]] = {}
ECHO = object()  # FakeIdP.id_token_nonce: echo the authorization request's nonce


def _app(provider_id: str, name: str) -> dict[str, Any]:
    return {
        "provider_id": provider_id,
        "name": name,
        "client_id": f"vault-{provider_id}",
        "secret": "client-secret",
        "settings": {"server_url": IDP, "fetch_userinfo": True},
    }


class FakeIdP:
    """The provider's HTTP side: discovery, token and userinfo endpoints."""

    def __init__(self) -> None:
        self.token_status = 200
        self.token_body: Any = {
            "access_token": ACCESS,
            "refresh_token": REFRESH,
            "token_type": "Bearer",
            "expires_in": 3600,
        }
        self.userinfo: Any = dict(USERINFO)
        self.id_token_nonce: Any = ECHO  # or a nonce of its own, or None for an ID token without one
        self.issue_id_token = True
        self.sid: str | None = None  # the provider's session id, named in the ID token if set

    def id_token(self, data: dict[str, Any]) -> str:
        """A signed ID token for the authorization request the code was issued to (allauth does
        not check the signature of an ID token it fetched itself over TLS, so any key will do)."""
        authorization = AUTHORIZATIONS.get(data.get("code", "").removeprefix("code-"), {})
        now = int(time.time())
        claims = {"iss": IDP, "aud": data.get("client_id"), "sub": USERINFO["sub"], "iat": now, "exp": now + 300}
        nonce = authorization.get("nonce") if self.id_token_nonce is ECHO else self.id_token_nonce
        if nonce is not None:
            claims["nonce"] = nonce
        if self.sid is not None:
            claims["sid"] = self.sid
        return jwt.encode(claims, "fake-idp-signing-key-of-32-bytes!", algorithm="HS256")

    def answer(self, method: str, url: str, data: dict[str, Any] | None = None) -> requests.Response:
        config = {
            "issuer": IDP,
            "authorization_endpoint": f"{IDP}/auth",
            "token_endpoint": f"{IDP}/token",
            "userinfo_endpoint": f"{IDP}/me",
            "jwks_uri": f"{IDP}/jwks",
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
        }
        token_body = self.token_body
        if self.token_status == 200 and isinstance(token_body, dict) and self.issue_id_token:
            token_body = {**token_body, "id_token": self.id_token(data or {})}
        routes = {
            ("GET", f"{IDP}/.well-known/openid-configuration"): (200, config),
            ("POST", f"{IDP}/token"): (self.token_status, token_body),
            ("GET", f"{IDP}/me"): (200, self.userinfo),
        }
        status, body = routes[(method.upper(), url)]
        response = requests.Response()
        response.status_code = status
        response.url = url
        response._content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        response.headers["content-type"] = "application/json"
        return response


class FakeSession:
    def __init__(self, idp: FakeIdP):
        self.idp = idp

    def __enter__(self) -> "FakeSession":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        return self.idp.answer(method, url, kwargs.get("data"))

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.idp.answer("GET", url)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.idp.answer("POST", url, kwargs.get("data"))


@pytest.fixture
def idp(settings, monkeypatch, profile_schema) -> FakeIdP:
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {"APPS": [_app("testidp", "Test IdP"), _app("otheridp", "Other IdP")]}
    }
    fake = FakeIdP()
    monkeypatch.setattr(SocialAccountAdapter, "get_requests_session", lambda self: FakeSession(fake))
    return fake


def start(client, provider_id: str = "testidp", **params: str) -> str:
    """Begin a social login; returns the state the provider is asked to echo back."""
    response = client.post(f"/accounts/oidc/{provider_id}/login/", params)
    assert response.status_code == 302, response.content
    location = urlparse(response["Location"])
    assert location.netloc == "idp.test"
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    AUTHORIZATIONS[query["state"]] = query
    return query["state"]


def callback(client, state: str, provider_id: str = "testidp", **params: str):
    """The provider sends the browser back with a code for the authorization request `state`."""
    return client.get(
        f"/accounts/oidc/{provider_id}/login/callback/", {"code": f"code-{state}", "state": state, **params}
    )


# The consent part of every sign-up form (portal/forms.py): date of birth and country, typed.
TYPED = {"birth_date": "1987-03-14", "country": "NL"}


def sign_up(client, *, import_fields: list[str], **fields: Any):
    response = callback(client, start(client))
    assert response.status_code == 302 and response["Location"] == "/accounts/3rdparty/signup/"
    data = {"email": USERINFO["email"], "import_fields": import_fields, **TYPED, **fields}
    return client.post("/accounts/3rdparty/signup/", data)


def socialaccount_rows_text() -> str:
    """Every row of allauth's social tables, as text: what a database dump would show."""
    dump: list[str] = []
    with connection.cursor() as cursor:
        for table in ("socialaccount_socialaccount", "socialaccount_socialtoken", "socialaccount_socialapp"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 (fixed table names)
            dump.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(dump)


# --- Sign-up: the consent screen, the import, the sealing -------------------------------------
@pytest.mark.django_db
def test_signup_goes_through_the_import_screen_and_imports_only_what_was_ticked(client, idp):
    response = callback(client, start(client))
    assert response["Location"] == "/accounts/3rdparty/signup/", "allauth's auto sign-up must not skip the screen"
    assert not User.objects.exists()

    page = client.get("/accounts/3rdparty/signup/").content.decode()
    assert "Copy from Test IdP into your profile?" in page
    for offered in ("Your birthday: 1987-03-14", "Your first name: Robin", "Your city (from your location): Utrecht"):
        assert offered in page
    assert "checked" not in page.split('id="import-choices"')[1].split("</fieldset>")[0], "nothing ticked in advance"

    response = client.post(
        "/accounts/3rdparty/signup/", {"email": USERINFO["email"], "import_fields": ["birth_date", "country"]}
    )  # nothing typed: the ticked copies answer the date of birth and country questions
    assert response.status_code == 302
    user = User.objects.get(email=USERINFO["email"])
    held = profile_read(
        subject_id=user.pk,
        fields=["birth_date", "country", "given_name", "family_name", "city"],
        purpose=RIGHTS_PURPOSE,
        actor=Actor.person(user.pk),
    )
    assert set(held) == {"birth_date", "country"}
    assert str(held["birth_date"].value) == "1987-03-14"
    assert held["country"].value == "NL"
    assert (held["birth_date"].source, held["birth_date"].source_name) == ("social", "testidp")
    assert EmailAddress.objects.get(user=user).verified


@pytest.mark.django_db
def test_provider_tokens_and_profile_answer_are_sealed_and_allauths_columns_empty(client, idp):
    sign_up(client, import_fields=[])
    user = User.objects.get()
    account = SocialAccount.objects.get(user=user)
    assert account.extra_data == {}
    token = SocialToken.objects.get(account=account)
    assert (token.token, token.token_secret) == ("", "")
    dump = socialaccount_rows_text()
    for secret in SECRETS:
        assert secret not in dump, f"{secret!r} in plaintext in allauth's tables"

    assert SealedSocialAccountData.objects.get(account=account).subject_id == user.pk
    assert SealedSocialToken.objects.get(token=token).subject_id == user.pk
    assert DataKey.objects.filter(subject_id=user.pk, data_class="tokens").exists()
    unsealed = social_account_read(account_id=account.pk, purpose=ACCOUNT_PURPOSE, actor=Actor.system("test"))
    assert unsealed.extra_data["userinfo"]["birthdate"] == "1987-03-14"
    [value] = unsealed.tokens
    assert (value.access_token, value.refresh_token) == (ACCESS, REFRESH)


@pytest.mark.django_db
def test_signing_in_again_reseals_the_new_answer_and_keeps_the_refresh_token(client, idp):
    sign_up(client, import_fields=[])
    client.logout()
    idp.token_body = {"access_token": "access-second-visit", "token_type": "Bearer", "expires_in": 3600}
    idp.userinfo = {**USERINFO, "locale": "nl"}
    response = callback(client, start(client))
    assert response.status_code == 302 and "signup" not in response["Location"]
    account = SocialAccount.objects.get()
    assert SocialAccount.objects.filter(extra_data={}).count() == 1
    unsealed = social_account_read(account_id=account.pk, purpose=RIGHTS_PURPOSE, actor=Actor.system("test"))
    assert unsealed.extra_data["userinfo"]["locale"] == "nl"
    [value] = unsealed.tokens
    assert (value.access_token, value.refresh_token) == ("access-second-visit", REFRESH)
    assert "access-second-visit" not in socialaccount_rows_text()


@pytest.mark.django_db
def test_sealing_applies_to_every_save_not_only_the_login_flow(alice):
    account = SocialAccount(user=alice, provider="github", uid="42", extra_data={"name": "Alice Liddell"})
    account.save()
    assert account.extra_data == {"name": "Alice Liddell"}, "the in-memory copy stays for this request"
    assert SocialAccount.objects.filter(pk=account.pk, extra_data={}).exists()
    token = SocialToken(account=account, token="gho_plaintext", token_secret="")
    token.save()
    assert SocialToken.objects.filter(pk=token.pk, token="", token_secret="").exists()
    token.token = "gho_newer"
    token.save()
    [value] = social_account_read(account_id=account.pk, purpose=ACCOUNT_PURPOSE, actor=Actor.system("t")).tokens
    assert (value.access_token, value.refresh_token) == ("gho_newer", "")


@pytest.mark.django_db
def test_unsealing_is_audited_and_limited_to_account_purposes(alice):
    from vault.models import AuditEntry

    account = SocialAccount.objects.create(user=alice, provider="github", uid="42", extra_data={"login": "alice"})
    social_account_read(account_id=account.pk, purpose=ACCOUNT_PURPOSE, actor=Actor.system("refresh"))
    entry = AuditEntry.objects.filter(action="social.unseal").get()
    assert entry.purpose == ACCOUNT_PURPOSE and "alice" not in json.dumps(entry.fields)
    with pytest.raises(Exception, match="purpose"):
        social_account_read(account_id=account.pk, purpose="email-marketing", actor=Actor.system("x"))


@pytest.mark.django_db
def test_the_gate_unseals_social_data_only_as_the_person_it_belongs_to(alice, bob):
    """accounts reads the sealed rows; the gate refuses rows of someone other than the person named."""
    account = SocialAccount.objects.create(user=alice, provider="github", uid="42", extra_data={"login": "alice"})
    SocialToken.objects.create(account=account, token="gho_alice", token_secret="")
    rows = list(SealedSocialToken.objects.filter(subject_id=alice.pk).select_related("token"))
    data = SealedSocialAccountData.objects.get(account=account)
    with pytest.raises(ValueError, match="another person"):
        social_account_unseal(
            subject_id=bob.pk,
            provider="github",
            data=data,
            tokens=rows,
            purpose=ACCOUNT_PURPOSE,
            actor=Actor.system("t"),
        )
    unsealed = social_account_unseal(
        subject_id=alice.pk, provider="github", data=data, tokens=rows, purpose=ACCOUNT_PURPOSE, actor=Actor.system("t")
    )
    assert unsealed.extra_data == {"login": "alice"} and unsealed.tokens[0].access_token == "gho_alice"


@pytest.mark.django_db
def test_a_pending_sign_up_is_sealed_in_the_session(client, idp):
    from django.contrib.sessions.models import Session

    from accounts.social import PENDING_SESSION_KEY, SEALED_SESSION_KEY

    callback(client, start(client))
    client.get("/accounts/3rdparty/signup/")  # shown, then sealed again
    [stored] = [session.get_decoded() for session in Session.objects.all()]
    assert PENDING_SESSION_KEY not in stored and SEALED_SESSION_KEY in stored
    for secret in [*SECRETS, USERINFO["email"]]:
        assert secret not in json.dumps(stored), "the session table holds the pending sign-up in plaintext"
    response = client.post("/accounts/3rdparty/signup/", {"email": USERINFO["email"], "import_fields": ["birth_date"]})
    assert response.status_code == 302
    assert User.objects.filter(email=USERINFO["email"]).exists()
    for session in Session.objects.all():
        assert SEALED_SESSION_KEY not in session.get_decoded(), "nothing left once the sign-up is done"


@pytest.mark.django_db
def test_a_damaged_sealed_sign_up_starts_over(client, idp):
    from django.contrib.sessions.backends.db import SessionStore as PlainStore
    from django.contrib.sessions.models import Session

    from accounts.social import SEALED_SESSION_KEY

    callback(client, start(client))
    [row] = Session.objects.all()  # as stored: the pending sign-up sealed
    stored = row.get_decoded()
    stored[SEALED_SESSION_KEY] = {**stored[SEALED_SESSION_KEY], "body": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
    row.session_data = PlainStore().encode(stored)
    row.save()
    response = client.get("/accounts/3rdparty/signup/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not User.objects.exists()


@pytest.mark.django_db
def test_allauths_reauthentication_state_is_sealed_too(client, alice):
    from django.contrib.sessions.models import Session

    client.force_login(alice)
    session = client.session
    session["account_reauthentication_state"] = {"state": {"account": {"extra_data": {"name": "Alice Liddell"}}}}
    session.save()
    client.get("/")
    [stored] = [row.get_decoded() for row in Session.objects.all()]
    assert "Alice Liddell" not in json.dumps(stored)
    assert "vault_sealed_reauthentication" in stored


@pytest.mark.django_db
def test_a_login_cannot_ask_for_more_than_the_configured_scopes(client, idp):
    response = client.post("/accounts/oidc/testidp/login/", {"scope": "offline_access,address"})
    scope = parse_qs(urlparse(response["Location"]).query)["scope"][0]
    assert set(scope.split()) == {"openid", "profile", "email"}


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["query", "form"])
def test_a_login_cannot_smuggle_scopes_or_a_state_through_auth_params(client, idp, where):
    smuggled = {"auth_params": "scope=openid email phone address&state=attacker&prompt=none"}
    url = "/accounts/oidc/testidp/login/"
    response = client.post(f"{url}?{urlencode(smuggled)}") if where == "query" else client.post(url, smuggled)
    query = parse_qs(urlparse(response["Location"]).query)
    assert set(query["scope"][0].split()) == {"openid", "profile", "email"}
    assert query["state"][0] != "attacker"
    assert "prompt" not in query


@pytest.mark.django_db
def test_a_failing_import_leaves_no_half_created_account(client, idp, monkeypatch):
    import accounts.social.imports

    def broken(**kwargs: Any) -> list[str]:
        raise RuntimeError("profile store unavailable")

    monkeypatch.setattr(accounts.social.imports, "profile_write", broken)
    with pytest.raises(RuntimeError):
        sign_up(client, import_fields=["birth_date"])
    assert not User.objects.exists()
    assert not SocialAccount.objects.exists() and not SocialToken.objects.exists()
    assert not SealedSocialAccountData.objects.exists() and not SealedSocialToken.objects.exists()


@pytest.mark.django_db
def test_social_sign_up_asks_the_same_consents_as_the_email_sign_up(client, idp):
    from consent.selectors import consent_is_granted

    callback(client, start(client))
    page = client.get("/accounts/3rdparty/signup/").content.decode()
    assert 'name="consents"' in page and 'name="birth_date"' in page
    response = sign_up(client, import_fields=[], consents=["personalization"])
    assert response.status_code == 302
    user = User.objects.get()
    assert consent_is_granted(subject_id=user.pk, purpose="personalization")
    assert not consent_is_granted(subject_id=user.pk, purpose="email-marketing")


@pytest.mark.django_db
def test_a_copied_birthday_answers_the_date_of_birth_question(client, idp):
    response = sign_up(client, import_fields=["birth_date"], birth_date="")
    assert response.status_code == 302
    user = User.objects.get()
    held = profile_read(subject_id=user.pk, fields=["birth_date"], purpose=RIGHTS_PURPOSE, actor=Actor.person(user.pk))
    assert held["birth_date"].source == "social"
    history = profile_history_read(subject_id=user.pk, actor=Actor.person(user.pk))
    assert not history, "the copy is written once, with its source, not first as typed in"


@pytest.mark.django_db
def test_a_typed_date_of_birth_that_contradicts_the_copied_one_is_questioned(client, idp):
    response = sign_up(client, import_fields=["birth_date"], birth_date="1990-01-01")
    assert response.status_code in (200, 400)
    assert "differs from what you asked us to copy" in response.content.decode()
    assert not User.objects.exists() and not SocialAccount.objects.exists()


@pytest.mark.django_db
def test_a_copied_birthday_feeds_the_age_gate(client, idp):
    idp.userinfo = {**USERINFO, "birthdate": "2015-01-01"}
    response = sign_up(client, import_fields=["birth_date"], birth_date="", consents=["personalization"])
    assert "a parent or guardian has to agree" in response.content.decode()
    assert not User.objects.exists()


# --- Bad provider answers: a friendly page, nothing created -----------------------------------
def assert_friendly_failure(response, status: int = 401) -> None:
    """A refusal is allauth's 401; a provider that failed (down, 5xx, an answer we cannot read)
    gives 502 (docs/social-login.md)."""
    assert response.status_code == status
    page = response.content.decode()
    assert "Signing in did not work" in page and "Nothing was created" in page
    assert not User.objects.exists() and not SocialAccount.objects.exists() and not SocialToken.objects.exists()
    assert "socialaccount_sociallogin" not in response.wsgi_request.session


@pytest.mark.django_db
def test_provider_returning_an_error(client, idp):
    state = start(client)
    assert_friendly_failure(
        client.get("/accounts/oidc/testidp/login/callback/", {"error": "server_error", "state": state})
    )


@pytest.mark.django_db
def test_token_endpoint_refusing(client, idp):
    idp.token_status, idp.token_body = 400, {"error": "invalid_grant"}
    assert_friendly_failure(callback(client, start(client)))


@pytest.mark.parametrize(
    "userinfo",
    ["<html>not json</html>", {"email": "no-subject@example.com"}, ["a", "list"], {"sub": ""}],
    ids=["not-json", "no-subject", "not-an-object", "empty-subject"],
)
@pytest.mark.django_db
def test_malformed_userinfo(client, idp, userinfo):
    idp.userinfo = userinfo
    assert_friendly_failure(callback(client, start(client)), status=502)


@pytest.mark.django_db
def test_tampered_oauth_state(client, idp):
    start(client)
    assert_friendly_failure(callback(client, "forged-state-value"))


@pytest.mark.django_db
def test_malformed_claims_are_not_offered_but_shown_with_the_reason(client, idp):
    idp.userinfo = {**USERINFO, "birthdate": "0000-03-14", "address": {"country": "Atlantis"}}
    callback(client, start(client))
    page = client.get("/accounts/3rdparty/signup/").content.decode()
    assert 'value="birth_date"' not in page and 'value="country"' not in page, "no box to tick"
    unusable = page.split('id="import-unusable"')[1].split("</div>")[0]
    assert "Your birthday: 0000-03-14 (not copied: not in a form this field accepts)" in unusable
    assert "Your country" not in page, "a place we cannot read as a country is not a country claim"
    assert "Your first name: Robin" in page


# --- The OpenID Connect nonce (accounts/social/oidc.py) ----------------------------------------
@pytest.mark.django_db
def test_each_openid_connect_login_sends_a_fresh_nonce_kept_server_side(client, idp):
    first, second = start(client), start(client)
    nonces = [AUTHORIZATIONS[first]["nonce"], AUTHORIZATIONS[second]["nonce"]]
    assert all(len(nonce) >= 40 for nonce in nonces) and nonces[0] != nonces[1]
    states = client.session["socialaccount_states"]
    assert [states[first][0]["oidc_nonce"], states[second][0]["oidc_nonce"]] == nonces
    # A login's `auth_params` parameter (allauth passes it on to the provider) cannot pick it.
    response = client.post("/accounts/oidc/testidp/login/?auth_params=nonce%3Dchosen-by-attacker")
    assert parse_qs(urlparse(response["Location"]).query)["nonce"] != ["chosen-by-attacker"]


@pytest.mark.django_db
def test_the_nonce_the_provider_echoes_is_accepted(client, idp):
    response = callback(client, start(client))
    assert response.status_code == 302 and response["Location"] == "/accounts/3rdparty/signup/"


@pytest.mark.parametrize(
    "id_token_nonce",
    ["a-nonce-from-another-authorization-request", None, "", "ünïcode"],
    ids=["another-nonce", "no-nonce", "empty-nonce", "non-ascii"],
)
@pytest.mark.django_db
def test_an_id_token_without_this_logins_nonce_is_refused(client, idp, caplog, id_token_nonce):
    idp.id_token_nonce = id_token_nonce
    assert_friendly_failure(callback(client, start(client)))
    [line] = [record.getMessage() for record in caplog.records if record.name == "accounts.social"]
    assert line == "Social login with testidp failed: unknown, IdTokenNonceMismatch"


@pytest.mark.django_db
def test_a_token_response_without_an_id_token_is_refused(client, idp):
    idp.issue_id_token = False
    assert_friendly_failure(callback(client, start(client)))


@pytest.mark.django_db
def test_an_id_token_of_another_login_cannot_connect_an_account(client, idp, alice):
    client.force_login(alice)
    state = start(client, process="connect")
    AUTHORIZATIONS[state] = {**AUTHORIZATIONS[state], "nonce": "nonce-of-the-attackers-own-login"}
    response = callback(client, state)
    assert response.status_code == 401 and "Signing in did not work" in response.content.decode()
    assert not SocialAccount.objects.exists()


# --- The provider's session id, recorded at sign-in (accounts/social/provider_sessions.py) -----
@pytest.mark.django_db
def test_signing_in_records_the_providers_session_as_a_keyed_hash_in_the_session(client, idp):
    from django.contrib.sessions.models import Session
    from django.core.cache import cache

    from accounts.social.provider_sessions import PROVIDER_SESSIONS_KEY, provider_session_marker

    idp.sid = "op-session-at-sign-up"
    sign_up(client, import_fields=[])  # the marker waits in the pending sign-up's state
    user = User.objects.get()
    first = provider_session_marker(provider_id="testidp", issuer=IDP, sid="op-session-at-sign-up")
    assert client.session[PROVIDER_SESSIONS_KEY] == [first]
    assert cache.get(f"accounts.provider-session.{first}") == str(user.pk)

    client.logout()
    idp.sid = "op-session-later"
    assert callback(client, start(client)).status_code == 302  # an existing account signs in
    second = provider_session_marker(provider_id="testidp", issuer=IDP, sid="op-session-later")
    assert client.session[PROVIDER_SESSIONS_KEY] == [second]
    for row in Session.objects.all():
        assert "op-session-" not in json.dumps(row.get_decoded()), "the provider's sid in plaintext"

    client.logout()
    idp.sid = None
    callback(client, start(client))
    assert PROVIDER_SESSIONS_KEY not in client.session, "no sid, nothing recorded"


@pytest.mark.django_db
def test_connecting_an_account_records_no_provider_session(client, idp, alice):
    from accounts.social.provider_sessions import PROVIDER_SESSIONS_KEY

    idp.sid = "op-session-of-a-connect"
    client.force_login(alice)
    assert callback(client, start(client, process="connect")).status_code == 302
    assert SocialAccount.objects.filter(user=alice).exists()
    assert PROVIDER_SESSIONS_KEY not in client.session, "this session did not sign in with the provider"


# --- What the provider sent that cannot be used: said, not dropped --------------------------
ZOE = "zoë.ångström@example.test"


@pytest.mark.django_db
def test_an_address_with_non_ascii_before_the_at_is_explained(client, idp):
    idp.userinfo = {**USERINFO, "email": ZOE}
    callback(client, start(client))
    page = client.get("/accounts/3rdparty/signup/").content.decode()
    assert f"Test IdP gave us {ZOE}, but we cannot send mail to an address with non-ASCII characters" in page
    assert f'value="{ZOE}"' not in page, "not offered as the address: sending to it would fail"

    response = client.post("/accounts/3rdparty/signup/", {**TYPED, "email": ""})
    assert response.status_code in (200, 400)
    assert "This field is required" not in response.content.decode(), "the reason, not a bare 'required'"
    assert "we cannot send mail to an address with non-ASCII characters" in response.content.decode()

    response = client.post("/accounts/3rdparty/signup/", {**TYPED, "email": ZOE})
    errors = response.context["form"].errors["email"]
    assert errors == [
        "We cannot send mail to an address with non-ASCII characters before the @; please use another address."
    ]
    assert not User.objects.exists()

    response = client.post("/accounts/3rdparty/signup/", {**TYPED, "email": "zoe.angstrom@example.test"})
    assert response.status_code == 302
    assert User.objects.get().email == "zoe.angstrom@example.test"


def test_django_cannot_send_to_a_non_ascii_local_part():
    """Why the form refuses one (docs/social-login.md): Django's SMTP backend raises on such a
    recipient and never asks the server for SMTPUTF8; a non-ASCII domain is sent as IDNA."""
    from django.core.mail.backends.smtp import EmailBackend

    with pytest.raises(ValueError, match="non-ASCII"):
        EmailBackend.prep_address(None, ZOE)
    assert EmailBackend.prep_address(None, "zoe@exämple.test") == "zoe@xn--exmple-cua.test"


@pytest.mark.django_db
def test_an_address_with_a_non_ascii_domain_is_used(client, idp):
    idp.userinfo = {**USERINFO, "email": "robin@exämple.test"}
    callback(client, start(client))
    page = client.get("/accounts/3rdparty/signup/").content.decode()
    assert 'value="robin@exämple.test"' in page and "non-ASCII" not in page


@pytest.mark.django_db
def test_a_claim_longer_than_the_field_allows_is_shown_as_not_importable(client, idp):
    long_name = "Wolfeschlegelsteinhausenbergerdorff" * 4  # 140 characters; the field takes 100
    idp.userinfo = {**USERINFO, "given_name": long_name}
    callback(client, start(client))
    page = client.get("/accounts/3rdparty/signup/").content.decode()
    assert 'value="given_name"' not in page, "nothing to tick"
    unusable = page.split('id="import-unusable"')[1].split("</div>")[0]
    reason = "(not copied: longer than this field allows (100 characters))"
    assert f"Your first name: {long_name[:59]}… {reason}" in unusable
    assert 'value="family_name"' in page, "the other claims are offered as before"

    response = client.post(
        "/accounts/3rdparty/signup/", {"email": USERINFO["email"], "import_fields": ["given_name"], **TYPED}
    )
    assert "import_fields" in response.context["form"].errors, "an unusable claim cannot be ticked anyway"
    assert not User.objects.exists()


@pytest.mark.django_db
def test_import_offers_say_why_a_claim_cannot_be_copied(settings, profile_schema):
    from allauth.socialaccount.models import SocialLogin

    from accounts.social import ImportOffer, social_claims_import, social_import_offers

    settings.SOCIALACCOUNT_PROVIDERS = {"github": {"APPS": [{"client_id": "g", "secret": "s"}]}}
    answer = {"id": 2, "name": "Sam Okafor", "location": "x" * 101}
    github = SocialAccount(provider="github", uid="2", extra_data=answer)
    offers = {offer.key: offer for offer in social_import_offers(SocialLogin(account=github))}
    assert offers["given_name"] == ImportOffer("given_name", "Your first name", "Sam", "Sam")
    city = offers["city"]
    assert (city.importable, city.value) == (False, None)
    assert city.problem == "longer than this field allows (100 characters)"
    assert city.shown == "x" * 59 + "…"
    # Asked for anyway (a forged form), an unusable offer writes nothing.
    assert social_claims_import(subject_id=uuid.uuid4(), provider="github", offers=[city], keys=["city"]) == []


# --- Linking and unlinking --------------------------------------------------------------------
@pytest.mark.django_db
def test_linking_a_second_provider_and_unlinking(client, idp):
    sign_up(client, import_fields=[])
    user = User.objects.get()
    idp.userinfo = {**USERINFO, "sub": "other-1"}
    response = callback(client, start(client, "otheridp", process="connect"), "otheridp")
    assert response.status_code == 302
    assert sorted(SocialAccount.objects.filter(user=user).values_list("provider", flat=True)) == ["otheridp", "testidp"]
    assert SealedSocialToken.objects.filter(subject_id=user.pk).count() == 2

    connections = client.get("/accounts/3rdparty/")
    assert connections.status_code == 200
    other = SocialAccount.objects.get(provider="otheridp")
    response = client.post("/accounts/3rdparty/", {"account": other.pk})
    assert response.status_code == 302
    assert not SocialAccount.objects.filter(pk=other.pk).exists()
    assert SealedSocialAccountData.objects.filter(subject_id=user.pk).count() == 1, "unlinking purges its sealed data"
    assert SealedSocialToken.objects.filter(subject_id=user.pk).count() == 1

    # The last way in (no password was ever set) cannot be removed.
    last = SocialAccount.objects.get(provider="testidp")
    response = client.post("/accounts/3rdparty/", {"account": last.pk})
    assert response.status_code == 200
    assert SocialAccount.objects.filter(pk=last.pk).exists()
    assert "has no password set up" in str(response.context["form"].non_field_errors())
    assert "has no password set up" in response.content.decode(), "the page says why"
    assert 'href="/accounts/password/set/"' in response.content.decode(), "and offers the way out"


# --- Configuration from the environment -------------------------------------------------------
def test_no_provider_unless_configured():
    assert social_providers_from_env({}) == {}


def test_providers_from_env_with_minimal_scopes(tmp_path):
    secret_file = tmp_path / "google-secret"
    secret_file.write_text("from-a-file\n")
    providers = social_providers_from_env(
        {
            "SOCIAL_GOOGLE_CLIENT_ID": "g-id",
            "SOCIAL_GOOGLE_SECRET_FILE": str(secret_file),
            "SOCIAL_FACEBOOK_CLIENT_ID": "f-id",
            "SOCIAL_FACEBOOK_SECRET": "f-secret",
            "SOCIAL_FACEBOOK_SCOPES": "email,public_profile,user_birthday",
            "SOCIAL_OIDC_PROVIDERS": "keycloak, corp-sso",
            "SOCIAL_OIDC_KEYCLOAK_SERVER_URL": "https://sso.example.com/realms/brand",
            "SOCIAL_OIDC_KEYCLOAK_CLIENT_ID": "vault",
            "SOCIAL_OIDC_KEYCLOAK_SECRET": "k-secret",
            "SOCIAL_OIDC_CORP_SSO_SERVER_URL": "https://corp.example.com",
            "SOCIAL_OIDC_CORP_SSO_CLIENT_ID": "vault",
            "SOCIAL_OIDC_CORP_SSO_SECRET": "c-secret",
            "SOCIAL_OIDC_CORP_SSO_LABEL": "Corporate login",
        }
    )
    assert set(providers) == {"google", "facebook", "openid_connect"}
    assert providers["google"]["APPS"] == [{"client_id": "g-id", "secret": "from-a-file"}]
    assert providers["google"]["SCOPE"] == ["openid", "email", "profile"]
    assert "birthday" in providers["facebook"]["FIELDS"] and "likes" not in providers["facebook"]["FIELDS"]
    keycloak, corp = providers["openid_connect"]["APPS"]
    assert keycloak["provider_id"] == "keycloak" and keycloak["settings"]["fetch_userinfo"] is True
    assert keycloak["settings"]["scope"] == ["openid", "email", "profile"]
    assert (corp["provider_id"], corp["name"]) == ("corp-sso", "Corporate login")
    # PKCE everywhere it is supported (RFC 7636).
    assert providers["google"]["OAUTH_PKCE_ENABLED"] is True and providers["facebook"]["OAUTH_PKCE_ENABLED"] is True
    assert keycloak["settings"]["oauth_pkce_enabled"] is True


def test_a_provider_on_this_machine_may_use_plain_http():
    providers = social_providers_from_env(
        {
            "SOCIAL_OIDC_PROVIDERS": "local",
            "SOCIAL_OIDC_LOCAL_SERVER_URL": "http://127.0.0.1:9090",
            "SOCIAL_OIDC_LOCAL_CLIENT_ID": "x",
            "SOCIAL_OIDC_LOCAL_SECRET": "y",
        }
    )
    assert providers["openid_connect"]["APPS"][0]["settings"]["server_url"] == "http://127.0.0.1:9090"


@pytest.mark.parametrize(
    "environ",
    [
        {"SOCIAL_GITHUB_CLIENT_ID": "only-the-id"},
        {"SOCIAL_APPLE_CLIENT_ID": "com.example.web"},
        {"SOCIAL_GOOGLE_CLIENT_ID": "g", "SOCIAL_GOOGLE_SECRET": "s", "SOCIAL_GOOGLE_SCOPES": "email,profile"},
        {"SOCIAL_OIDC_PROVIDERS": "Bad Name"},
        {"SOCIAL_OIDC_PROVIDERS": "sso", "SOCIAL_OIDC_SSO_CLIENT_ID": "x", "SOCIAL_OIDC_SSO_SECRET": "y"},
        {
            "SOCIAL_OIDC_PROVIDERS": "sso",
            "SOCIAL_OIDC_SSO_SERVER_URL": "http://sso.example.com",
            "SOCIAL_OIDC_SSO_CLIENT_ID": "x",
            "SOCIAL_OIDC_SSO_SECRET": "y",
        },
        {
            "SOCIAL_OIDC_PROVIDERS": "sso",
            "SOCIAL_OIDC_SSO_SERVER_URL": "http://127.0.0.1.attacker.example/realms/x",
            "SOCIAL_OIDC_SSO_CLIENT_ID": "x",
            "SOCIAL_OIDC_SSO_SECRET": "y",
        },
        {
            "SOCIAL_OIDC_PROVIDERS": "sso",
            "SOCIAL_OIDC_SSO_SERVER_URL": "http://localhost.attacker.example",
            "SOCIAL_OIDC_SSO_CLIENT_ID": "x",
            "SOCIAL_OIDC_SSO_SECRET": "y",
        },
    ],
    ids=[
        "id-without-secret",
        "apple-without-key",
        "google-without-openid",
        "bad-oidc-name",
        "oidc-without-url",
        "oidc-over-http",
        "oidc-http-host-prefixed-like-loopback",
        "oidc-http-host-prefixed-like-localhost",
    ],
)
def test_incomplete_provider_configuration_refuses_to_start(environ):
    with pytest.raises(ImproperlyConfigured):
        social_providers_from_env(environ)


def test_the_content_security_policy_lets_forms_leave_only_for_configured_providers():
    from accounts.social_providers import social_form_action_sources

    providers = social_providers_from_env(
        {
            "SOCIAL_GITHUB_CLIENT_ID": "id",
            "SOCIAL_GITHUB_SECRET": "secret",
            "SOCIAL_OIDC_PROVIDERS": "sso",
            "SOCIAL_OIDC_SSO_SERVER_URL": "https://sso.example.com/realms/brand",
            "SOCIAL_OIDC_SSO_CLIENT_ID": "vault",
            "SOCIAL_OIDC_SSO_SECRET": "s",
        }
    )
    assert social_form_action_sources(providers) == ["https://github.com", "https://sso.example.com"]
    assert social_form_action_sources({}) == []


@pytest.mark.django_db
def test_facebook_and_github_answers_map_to_profile_fields(settings, profile_schema):
    from allauth.socialaccount.models import SocialLogin

    from accounts.social import social_import_offers

    settings.SOCIALACCOUNT_PROVIDERS = {
        "facebook": {"APPS": [{"client_id": "f", "secret": "s"}]},
        "github": {"APPS": [{"client_id": "g", "secret": "s"}]},
    }
    facebook = SocialAccount(
        provider="facebook",
        uid="1",
        extra_data={
            "id": "1",
            "first_name": "Ines",
            "last_name": "Duarte",
            "birthday": "07/21/1992",
            "location": {"id": "9", "name": "Lisbon, Portugal"},
            "likes": {"data": [{"name": "Trail Running Club", "category": "Sports"}, {"name": "Yoga Daily"}]},
        },
    )
    offers = {offer.key: offer.value for offer in social_import_offers(SocialLogin(account=facebook))}
    assert offers == {
        "given_name": "Ines",
        "family_name": "Duarte",
        "birth_date": datetime.date(1992, 7, 21),
        "country": "PT",
        "city": "Lisbon",
        "interests": ["running", "yoga"],
    }
    github = SocialAccount(provider="github", uid="2", extra_data={"id": 2, "name": "Sam Okafor", "location": "Lagos"})
    offers = {offer.key: offer.value for offer in social_import_offers(SocialLogin(account=github))}
    assert offers == {"given_name": "Sam", "family_name": "Okafor", "city": "Lagos"}
    partial = SocialAccount(provider="facebook", uid="3", extra_data={"id": "3", "birthday": "07/21"})
    assert "birth_date" not in {offer.key for offer in social_import_offers(SocialLogin(account=partial))}


@pytest.mark.django_db
def test_sessions_of_headless_app_clients_are_sealed_too():
    """allauth's app clients load their session by X-Session-Token inside the view, through the
    session backend: the pending sign-up is sealed there, whatever loads the session."""
    from allauth.headless.internal.sessionkit import lookup_session, new_session
    from django.contrib.sessions.models import Session

    from accounts.social import PENDING_SESSION_KEY, SEALED_SESSION_KEY

    session = new_session()
    session[PENDING_SESSION_KEY] = {"account": {"extra_data": USERINFO}, "token": {"token": ACCESS}}
    session.save()

    stored = Session.objects.get(session_key=session.session_key).get_decoded()
    assert PENDING_SESSION_KEY not in stored and SEALED_SESSION_KEY in stored
    for secret in (ACCESS, USERINFO["email"]):
        assert secret not in json.dumps(stored)
    assert lookup_session(session.session_key)[PENDING_SESSION_KEY]["token"]["token"] == ACCESS


# --- A later sign-in is a refresh (accounts/social/refresh.py) ---------------------------------
@pytest.mark.django_db
def test_signing_in_again_brings_the_imported_fields_up_to_date(client, idp):
    from accounts.models import SocialLinkState
    from vault.models import AuditEntry

    sign_up(client, import_fields=["given_name", "city"])
    user = User.objects.get()
    client.logout()
    idp.userinfo = {
        **USERINFO,
        "given_name": "Robyn",
        "family_name": "Changed-but-not-imported",
        "address": {"locality": "Utrecht", "country": "NL"},
    }

    response = callback(client, start(client))

    assert response.status_code == 302 and "signup" not in response["Location"]
    held = profile_read(
        subject_id=user.pk,
        fields=["given_name", "family_name", "city"],
        purpose=RIGHTS_PURPOSE,
        actor=Actor.person(user.pk),
    )
    assert held["given_name"].value == "Robyn"
    assert (held["given_name"].source, held["given_name"].source_name) == ("social", "testidp")
    assert held["city"].value == "Utrecht", "unchanged: left as it is"
    assert "family_name" not in held, "not imported at sign-up: not imported now"
    [earlier] = profile_history_read(subject_id=user.pk, actor=Actor.person(user.pk))
    assert (earlier.key, earlier.value) == ("given_name", "Robin")
    state = SocialLinkState.objects.get(account__user=user)
    assert state.last_success_at == held["given_name"].collected_at
    entry = AuditEntry.objects.filter(action="social.refresh").latest("pk")
    assert entry.fields == ["social.extra_data", "profile.given_name"]
