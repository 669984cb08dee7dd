"""Security events pushed by providers: OpenID Connect back-channel logout and Google's
Cross-Account Protection (RISC). Tokens are signed with test keys that a real HTTP server on
127.0.0.1 publishes (discovery document, RISC configuration, JWKS), so fetching, caching and
refetching the keys run as in production; nothing else is faked."""

import http.server
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from allauth.account.signals import user_logged_in as allauth_user_logged_in
from allauth.socialaccount.models import SocialAccount, SocialLogin, SocialToken
from allauth.usersessions.models import UserSession
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import Client, RequestFactory
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from accounts.models import SealedSocialToken
from accounts.services import account_sessions_end
from accounts.social.provider_sessions import PROVIDER_SESSIONS_KEY, SID_STATE_KEY, provider_session_marker
from accounts.social.security_events import (
    BACKCHANNEL_LOGOUT_EVENT,
    RISC_ACCOUNT_DISABLED,
    RISC_SESSIONS_REVOKED,
    RISC_TOKENS_REVOKED,
    RISC_VERIFICATION,
)
from vault.models import AuditEntry

IDP = "idp"  # the OpenID Connect app's provider id
CLIENT_ID = "vault-idp"
GOOGLE_CLIENT_ID = "vault.apps.googleusercontent.com"
GOOGLE_ISSUER = "https://accounts.google.com/"
SUB = "idp-subject-0042"
GOOGLE_SUB = "104857600000000000001"
LOGOUT_URL = f"/accounts/oidc/{IDP}/backchannel-logout/"
RISC_URL = "/accounts/google/risc/"
SET = "application/secevent+jwt"
FORM = "application/x-www-form-urlencoded"


class KeyServer:
    """What a provider publishes, served over real HTTP from 127.0.0.1."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.documents: dict[str, Any] = {}
        self.hits: dict[str, int] = {}
        handler = self._handler()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.issuer = self.url
        self.publish()

    def jwk(self, kid: str) -> dict[str, Any]:
        key: dict[str, Any]
        if kid == "rsa-1":
            key = json.loads(RSAAlgorithm.to_jwk(self.rsa.public_key()))
        elif kid == "ec-1":
            key = json.loads(ECAlgorithm.to_jwk(self.ec.public_key()))
        else:
            key = json.loads(OKPAlgorithm.to_jwk(self.ed.public_key()))
        key.pop("key_ops", None)
        return {**key, "kid": kid, "use": "sig"}

    def publish(self, *kids: str) -> None:
        keys = [self.jwk(kid) for kid in (kids or ("rsa-1", "ec-1", "ed-1"))]
        self.documents = {
            "/.well-known/openid-configuration": {"issuer": self.issuer, "jwks_uri": f"{self.url}/jwks"},
            "/risc-configuration": {"issuer": GOOGLE_ISSUER, "jwks_uri": f"{self.url}/risc-jwks"},
            "/jwks": {"keys": keys},
            "/risc-jwks": {"keys": keys},
        }

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                document = server.documents.get(self.path)
                body = json.dumps(document).encode()
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def sign(self, claims: dict[str, Any], *, kid: str = "rsa-1", key: Any = None, alg: str | None = None) -> str:
        algorithms: dict[str, tuple[str, Any]] = {
            "rsa-1": ("RS256", self.rsa),
            "ec-1": ("ES256", self.ec),
            "ed-1": ("EdDSA", self.ed),
        }
        default_alg, default_key = algorithms.get(kid, ("RS256", self.rsa))
        return jwt.encode(claims, key or default_key, algorithm=alg or default_alg, headers={"kid": kid})


@pytest.fixture
def keys(settings, db) -> Iterator[KeyServer]:
    server = KeyServer()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": IDP,
                    "name": "Test IdP",
                    "client_id": CLIENT_ID,
                    "secret": "idp-client-secret",
                    "settings": {"server_url": server.url},
                }
            ]
        },
        "google": {"APPS": [{"client_id": GOOGLE_CLIENT_ID, "secret": "google-secret"}]},
    }
    settings.SOCIAL_GOOGLE_RISC_CONFIGURATION_URL = f"{server.url}/risc-configuration"
    settings.SOCIAL_GOOGLE_RISC_ISSUER = GOOGLE_ISSUER
    cache.clear()  # keys, documents and seen jtis of an earlier test
    yield server
    server.server.shutdown()
    server.server.server_close()
    cache.clear()


def logout_claims(server: KeyServer, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": server.issuer,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
        "sub": SUB,
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def risc_claims(*events: str, sub: str = GOOGLE_SUB, **changes: Any) -> dict[str, Any]:
    claims = {
        "iss": GOOGLE_ISSUER,
        "aud": GOOGLE_CLIENT_ID,
        "iat": int(time.time()),
        "jti": uuid.uuid4().hex,
        "events": {
            event: {"subject": {"subject_type": "iss-sub", "iss": GOOGLE_ISSUER, "sub": sub}}
            for event in (events or (RISC_TOKENS_REVOKED,))
        },
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def post_logout(token: str, provider: str = IDP) -> Any:
    return Client().post(f"/accounts/oidc/{provider}/backchannel-logout/", {"logout_token": token})


def post_risc(token: str) -> Any:
    return Client().post(RISC_URL, token, content_type=SET)


def sign_in(person: Any, *, provider: str | None, sid: str | None = None, issuer: str = "") -> Client:
    """A signed-in session of `person` (listed by allauth as every sign-in is), recorded as a
    sign-in with `provider` as allauth's social login records it, or with a password. With a
    `sid`, the provider's session is recorded as at an OpenID Connect sign-in: allauth's
    `user_logged_in` signal, naming a social login whose state carries its marker."""
    client = Client()
    client.force_login(person)
    session = client.session
    record = {"method": "password", "at": time.time()}
    if provider is not None:
        record = {"method": "socialaccount", "at": time.time(), "provider": provider, "uid": "x"}
    session["account_authentication_methods"] = [record]
    session["account_authentication_methods_user"] = str(person.pk)
    if sid is not None and provider is not None:
        sociallogin = SocialLogin(account=SocialAccount(provider=provider, uid="x"))
        sociallogin.state = {SID_STATE_KEY: provider_session_marker(provider_id=provider, issuer=issuer, sid=sid)}
        request = RequestFactory().get("/")
        request.session, request.user = session, person
        allauth_user_logged_in.send(sender=type(person), request=request, user=person, sociallogin=sociallogin)
    session.save()
    return client


def alive(client: Client) -> bool:
    key = client.cookies["sessionid"].value
    return Session.objects.filter(session_key=key).exists() and UserSession.objects.filter(session_key=key).exists()


def link(person: Any, provider: str, uid: str, *, token: str = "") -> SocialAccount:
    account = SocialAccount.objects.create(user=person, provider=provider, uid=uid)
    if token:
        SocialToken.objects.create(account=account, token=token, token_secret=f"{token}-refresh")
    return account


def assert_refused(response: Any, code: str, status: int = 400) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == status
    assert body["errors"][0]["code"] == code, body
    assert response["Cache-Control"] == "no-store"


# --- account_sessions_end ------------------------------------------------------------------------
def test_sessions_end_only_those_signed_in_with_the_provider(alice, bob):
    with_idp, with_password, with_google = (sign_in(alice, provider=p) for p in (IDP, None, "google"))
    bobs = sign_in(bob, provider=IDP)

    assert account_sessions_end(subject_id=alice.pk, provider=IDP) == 1

    assert not alive(with_idp)
    assert alive(with_password) and alive(with_google) and alive(bobs)
    assert account_sessions_end(subject_id=alice.pk) == 2
    assert not alive(with_password) and not alive(with_google) and alive(bobs)


# --- Back-channel logout -------------------------------------------------------------------------
@pytest.mark.parametrize("kid", ["rsa-1", "ec-1", "ed-1"])
def test_a_valid_logout_token_ends_the_sessions_of_that_provider(keys, alice, bob, kid, caplog):
    link(alice, IDP, SUB)
    link(bob, IDP, "someone-else")
    ended, kept = sign_in(alice, provider=IDP), sign_in(alice, provider=None)
    bobs = sign_in(bob, provider=IDP)
    caplog.set_level(logging.INFO, logger="accounts.social")

    response = post_logout(keys.sign(logout_claims(keys), kid=kid))

    assert response.status_code == 200, response.content
    assert response.content == b""
    assert response["Cache-Control"] == "no-store"
    assert not alive(ended)
    assert alive(kept) and alive(bobs)
    assert ended.get("/accounts/3rdparty/").status_code == 302, "the browser is signed out"
    lines = [record.getMessage() for record in caplog.records if record.name == "accounts.social"]
    assert lines == [f"Back-channel logout from {IDP}: 1 session(s) ended"]
    assert SUB not in caplog.text


def test_an_unknown_subject_gets_the_same_answer(keys, alice):
    link(alice, IDP, SUB)
    session = sign_in(alice, provider=IDP)
    known = post_logout(keys.sign(logout_claims(keys)))
    unknown = post_logout(keys.sign(logout_claims(keys, sub="nobody-we-know")))
    assert (unknown.status_code, unknown.content, unknown["Cache-Control"]) == (
        known.status_code,
        known.content,
        known["Cache-Control"],
    )
    assert not alive(session)


def test_the_subject_of_another_provider_is_not_signed_out(keys, alice):
    link(alice, "google", SUB)  # the same uid, at another provider
    session = sign_in(alice, provider="google")
    assert post_logout(keys.sign(logout_claims(keys))).status_code == 200
    assert alive(session)


def _attacker_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda k: k.sign(logout_claims(k), key=_attacker_key()), "token_signature_invalid"),
        (lambda k: k.sign(logout_claims(k), kid="not-published"), "token_key_unknown"),
        (lambda k: k.sign(logout_claims(k, iss="https://evil.example")), "token_issuer_invalid"),
        (lambda k: k.sign(logout_claims(k, aud="another-client")), "token_audience_invalid"),
        (lambda k: k.sign(logout_claims(k, events=None)), "token_events_invalid"),
        (lambda k: k.sign(logout_claims(k, events={"https://example.com/other": {}})), "token_events_invalid"),
        (lambda k: k.sign(logout_claims(k, nonce="n-0123")), "token_has_nonce"),
        (lambda k: k.sign(logout_claims(k, iat=int(time.time()) - 3600, exp=None)), "token_too_old"),
        (lambda k: k.sign(logout_claims(k, exp=int(time.time()) - 600)), "token_expired"),
        (lambda k: k.sign(logout_claims(k, iat=int(time.time()) + 3600)), "token_not_yet_valid"),
        (lambda k: k.sign(logout_claims(k, iat=None)), "token_claim_missing"),
        (lambda k: k.sign(logout_claims(k, jti=None)), "token_claim_missing"),
        (lambda k: k.sign(logout_claims(k, sub=None)), "token_subject_missing"),
        (lambda k: k.sign(logout_claims(k, sub="", sid="")), "token_subject_missing"),
        (lambda k: jwt.encode(logout_claims(k), "", algorithm="none"), "token_algorithm_not_allowed"),
        (
            lambda k: jwt.encode(logout_claims(k), "idp-client-secret-of-32-bytes-length", algorithm="HS256"),
            "token_algorithm_not_allowed",
        ),
        (lambda k: k.sign(logout_claims(k), kid="ec-1", alg="RS256", key=k.rsa), "token_algorithm_not_allowed"),
        (lambda k: "not.a.jwt", "token_malformed"),
        (lambda k: "eyJhbGciOiJSUzI1NiJ9.e30", "token_malformed"),
    ],
)
def test_an_invalid_logout_token_is_refused_and_changes_nothing(keys, alice, make, code):
    link(alice, IDP, SUB)
    session = sign_in(alice, provider=IDP)
    assert_refused(post_logout(make(keys)), code)
    assert alive(session)


# --- Back-channel logout by the provider's session id (accounts/social/provider_sessions.py) --------
def test_a_logout_token_with_a_sub_and_a_sid_ends_only_that_session(keys, alice, bob, caplog):
    link(alice, IDP, SUB)
    link(bob, IDP, "someone-else")
    meant = sign_in(alice, provider=IDP, sid="op-session-1", issuer=keys.issuer)
    other = sign_in(alice, provider=IDP, sid="op-session-2", issuer=keys.issuer)
    unrecorded = sign_in(alice, provider=IDP)  # signed in before sids were recorded
    bobs = sign_in(bob, provider=IDP, sid="op-session-1", issuer=keys.issuer)  # the same sid, another person
    caplog.set_level(logging.INFO, logger="accounts.social")

    response = post_logout(keys.sign(logout_claims(keys, sid="op-session-1")))

    assert response.status_code == 200, response.content
    assert not alive(meant)
    assert alive(other) and alive(unrecorded) and alive(bobs)
    lines = [record.getMessage() for record in caplog.records if record.name == "accounts.social"]
    assert lines == [f"Back-channel logout from {IDP} (one provider session): 1 session(s) ended"]
    assert "op-session-1" not in caplog.text and SUB not in caplog.text


def test_a_logout_token_with_only_a_sid_ends_that_session(keys, alice, bob):
    link(alice, IDP, SUB)
    meant = sign_in(alice, provider=IDP, sid="op-session-1", issuer=keys.issuer)
    other = sign_in(alice, provider=IDP, sid="op-session-2", issuer=keys.issuer)
    bobs = sign_in(bob, provider=IDP, sid="op-session-3", issuer=keys.issuer)

    assert post_logout(keys.sign(logout_claims(keys, sub=None, sid="op-session-1"))).status_code == 200

    assert not alive(meant)
    assert alive(other) and alive(bobs)


def test_a_sid_is_bound_to_its_provider_and_issuer(keys, alice, settings):
    link(alice, IDP, SUB)
    elsewhere = sign_in(alice, provider=IDP, sid="op-session-1", issuer="https://another-issuer.example")
    other_app = sign_in(alice, provider="otheridp", sid="op-session-1", issuer=keys.issuer)
    assert post_logout(keys.sign(logout_claims(keys, sub=None, sid="op-session-1"))).status_code == 200
    assert post_logout(keys.sign(logout_claims(keys, sid="op-session-1"))).status_code == 200
    assert alive(elsewhere) and alive(other_app)


def test_an_unknown_sid_gets_the_same_answer_and_ends_nothing(keys, alice):
    link(alice, IDP, SUB)
    session = sign_in(alice, provider=IDP, sid="op-session-1", issuer=keys.issuer)
    known = post_logout(keys.sign(logout_claims(keys, sub=None, sid="op-session-1")))
    session = sign_in(alice, provider=IDP, sid="op-session-2", issuer=keys.issuer)
    unknown = post_logout(keys.sign(logout_claims(keys, sub=None, sid="op-session-nobody-knows")))
    assert (unknown.status_code, unknown.content) == (known.status_code, known.content) == (200, b"")
    assert alive(session)


def test_without_the_cache_a_sid_alone_ends_nothing_but_a_sub_and_sid_still_do(keys, alice):
    link(alice, IDP, SUB)
    session = sign_in(alice, provider=IDP, sid="op-session-1", issuer=keys.issuer)
    other = sign_in(alice, provider=IDP, sid="op-session-2", issuer=keys.issuer)
    cache.clear()  # evicted, or a cache that was restarted

    assert post_logout(keys.sign(logout_claims(keys, sub=None, sid="op-session-1"))).status_code == 200
    assert alive(session)
    assert post_logout(keys.sign(logout_claims(keys, sid="op-session-1"))).status_code == 200
    assert not alive(session) and alive(other)


def test_the_record_follows_the_session_to_a_new_key(keys, alice):
    """Django changes a session's key at a password change (and copies its data): the record
    goes with it, and a sid-only token still ends it."""
    link(alice, IDP, SUB)
    client = sign_in(alice, provider=IDP, sid="op-session-1", issuer=keys.issuer)
    session = client.session
    session.cycle_key()
    UserSession.objects.filter(user=alice).update(session_key=session.session_key)
    client.cookies["sessionid"] = session.session_key
    assert alive(client)
    assert post_logout(keys.sign(logout_claims(keys, sub=None, sid="op-session-1"))).status_code == 200
    assert not alive(client)


def test_no_sid_is_stored_in_plaintext(keys, alice):
    client = sign_in(alice, provider=IDP, sid="op-session-secret-7f3a", issuer=keys.issuer)
    data = Session.objects.get(session_key=client.cookies["sessionid"].value).get_decoded()
    marker = provider_session_marker(provider_id=IDP, issuer=keys.issuer, sid="op-session-secret-7f3a")
    assert data[PROVIDER_SESSIONS_KEY] == [marker]
    assert "op-session-secret-7f3a" not in json.dumps(data)
    assert cache.get(f"accounts.provider-session.{marker}") == str(alice.pk), "the person's opaque id, no session key"


def test_ending_by_provider_session_needs_the_provider(alice):
    with pytest.raises(ValueError, match="provider"):
        account_sessions_end(subject_id=alice.pk, provider_session="0" * 64)


def test_a_replayed_logout_token_is_refused(keys, alice):
    link(alice, IDP, SUB)
    token = keys.sign(logout_claims(keys))
    assert post_logout(token).status_code == 200
    session = sign_in(alice, provider=IDP)
    assert_refused(post_logout(token), "token_replayed")
    assert alive(session)


def test_a_missing_token_and_wrong_requests(keys):
    assert_refused(Client().post(LOGOUT_URL, {}), "required")
    assert Client().get(LOGOUT_URL).status_code == 405
    assert_refused(Client().post(LOGOUT_URL, "{}", content_type="application/json"), "unsupported_media_type", 415)
    assert_refused(post_logout(keys.sign(logout_claims(keys)), provider="no-such-idp"), "provider_unknown", 404)


def test_an_oversized_body_is_refused_in_the_envelope(keys, alice):
    link(alice, IDP, SUB)
    session = sign_in(alice, provider=IDP)
    big = keys.sign(logout_claims(keys, padding="x" * 40_000))
    assert_refused(post_logout(big), "token_too_large", 413)
    huge = Client().post(LOGOUT_URL, {"logout_token": "x" * 3_000_000})  # beyond Django's upload limit
    assert huge.status_code == 413
    assert huge.json()["errors"][0]["code"] == "too_large", "the request guard answers in the envelope here"
    assert alive(session)


def test_keys_are_cached_and_fetched_again_once_for_an_unknown_key_id(keys, alice):
    link(alice, IDP, SUB)
    keys.publish("rsa-1", "ec-1")
    for _ in range(3):
        assert post_logout(keys.sign(logout_claims(keys))).status_code == 200
    assert keys.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}

    keys.publish("ec-1", "ed-1")  # the provider rotates its keys: rsa-1 goes, ed-1 comes
    assert post_logout(keys.sign(logout_claims(keys), kid="ec-1")).status_code == 200
    assert keys.hits["/jwks"] == 1, "a key id in the cached set needs no fetch"
    assert post_logout(keys.sign(logout_claims(keys), kid="ed-1")).status_code == 200
    assert keys.hits["/jwks"] == 2, "an unknown key id fetches the set once"
    assert_refused(post_logout(keys.sign(logout_claims(keys), kid="made-up")), "token_key_unknown")
    assert keys.hits["/jwks"] == 2, "no second fetch within the cool-down"
    assert_refused(post_logout(keys.sign(logout_claims(keys), kid="rsa-1")), "token_key_unknown")


def test_keys_that_cannot_be_fetched_answer_503_and_change_nothing(keys, alice):
    link(alice, IDP, SUB)
    session = sign_in(alice, provider=IDP)
    token = keys.sign(logout_claims(keys))
    keys.documents.pop("/jwks")
    assert_refused(post_logout(token), "provider_keys_unavailable", 503)
    assert alive(session)
    keys.publish()
    assert post_logout(token).status_code == 200, "the same token delivered again is not a replay"
    assert not alive(session)


def test_the_endpoints_are_rate_limited(keys, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    # DRF's throttles read their rates once, at import: the class attribute is what counts.
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"security_events": "2/minute"})
    answers = [post_logout("not.a.jwt").status_code for _ in range(3)]
    assert answers == [400, 400, 429]
    throttled = post_risc("not.a.jwt")
    assert_refused(throttled, "throttled", 429)
    assert "Retry-After" in throttled, "one budget per sender for both receivers"


# --- Google RISC ---------------------------------------------------------------------------------
@pytest.fixture
def google_person(alice) -> Any:
    link(alice, "google", GOOGLE_SUB, token="ya29.google-access-token")
    link(alice, IDP, SUB, token="idp-access-token")
    return alice


def _tokens(provider: str) -> tuple[int, int]:
    return (
        SocialToken.objects.filter(account__provider=provider).count(),
        SealedSocialToken.objects.filter(token__account__provider=provider).count(),
    )


@pytest.mark.parametrize("event", [RISC_TOKENS_REVOKED, RISC_ACCOUNT_DISABLED])
def test_tokens_revoked_purges_the_google_tokens_and_ends_the_google_sessions(keys, google_person, event, caplog):
    google, idp, password = (sign_in(google_person, provider=p) for p in ("google", IDP, None))
    assert _tokens("google") == (1, 1)
    caplog.set_level(logging.INFO, logger="accounts.social")

    response = post_risc(keys.sign(risc_claims(event)))

    assert response.status_code == 202, response.content
    assert _tokens("google") == (0, 0)
    assert _tokens(IDP) == (1, 1), "another provider's tokens stay"
    assert not alive(google)
    assert alive(idp) and alive(password)
    entry = AuditEntry.objects.filter(action="social.tokens_purged").get()
    assert entry.fields == ["social.access_token", "social.refresh_token"]
    assert "ya29" not in json.dumps(entry.details or {})
    assert GOOGLE_SUB not in caplog.text
    assert f"Google RISC event {event}: acted: 1 token(s) purged, 1 session(s) ended" in caplog.text


def test_sessions_revoked_ends_the_sessions_only(keys, google_person):
    google = sign_in(google_person, provider="google")
    assert post_risc(keys.sign(risc_claims(RISC_SESSIONS_REVOKED))).status_code == 202
    assert not alive(google)
    assert _tokens("google") == (1, 1)
    assert not AuditEntry.objects.filter(action="social.tokens_purged").exists()


def test_the_id_token_claims_subject_form_is_understood(keys, google_person):
    google = sign_in(google_person, provider="google")
    claims = risc_claims(RISC_SESSIONS_REVOKED)
    claims["events"][RISC_SESSIONS_REVOKED]["subject"] = {
        "subject_type": "id_token_claims",
        "iss": GOOGLE_ISSUER,
        "sub": GOOGLE_SUB,
    }
    assert post_risc(keys.sign(claims)).status_code == 202
    assert not alive(google)


@pytest.mark.parametrize(
    "claims",
    [
        risc_claims(RISC_VERIFICATION),
        risc_claims("https://schemas.openid.net/secevent/risc/event-type/account-enabled"),
        risc_claims(RISC_TOKENS_REVOKED, sub="an-account-we-do-not-know"),
    ],
    ids=["verification", "unknown-event", "unknown-account"],
)
def test_other_events_and_unknown_accounts_are_acknowledged_and_ignored(keys, google_person, claims):
    google = sign_in(google_person, provider="google")
    claims = {**claims, "iat": int(time.time()), "jti": uuid.uuid4().hex}
    response = post_risc(keys.sign(claims))
    assert (response.status_code, response.content) == (202, b"")
    assert alive(google)
    assert _tokens("google") == (1, 1)


@pytest.mark.parametrize(
    ("make", "code", "err"),
    [
        (lambda k: k.sign(risc_claims(), key=_attacker_key()), "token_signature_invalid", "invalid_key"),
        (lambda k: k.sign(risc_claims(iss="https://accounts.example.com/")), "token_issuer_invalid", "invalid_issuer"),
        (lambda k: k.sign(risc_claims(aud="someone-elses-client")), "token_audience_invalid", "invalid_audience"),
        (lambda k: k.sign(risc_claims(events=None)), "token_events_invalid", "invalid_request"),
        (lambda k: k.sign(risc_claims(iat=int(time.time()) - 3600)), "token_too_old", "invalid_request"),
        (lambda k: jwt.encode(risc_claims(), "", algorithm="none"), "token_algorithm_not_allowed", "invalid_key"),
        (lambda k: "garbage", "token_malformed", "invalid_request"),
    ],
)
def test_an_invalid_set_is_refused_and_changes_nothing(keys, google_person, make, code, err):
    google = sign_in(google_person, provider="google")
    response = post_risc(make(keys))
    assert_refused(response, code)
    assert response.json()["err"] == err, "RFC 8935's error code, for the transmitter"
    assert alive(google)
    assert _tokens("google") == (1, 1)


def test_a_replayed_set_is_refused(keys, google_person):
    token = keys.sign(risc_claims(RISC_SESSIONS_REVOKED))
    assert post_risc(token).status_code == 202
    google = sign_in(google_person, provider="google")
    assert_refused(post_risc(token), "token_replayed")
    assert alive(google)


def test_a_logout_token_is_no_risc_event_and_the_reverse(keys, google_person):
    """Each receiver takes only its own tokens, even when signed by the same keys."""
    google = sign_in(google_person, provider="google")
    idp = sign_in(google_person, provider=IDP)
    as_logout = risc_claims(RISC_SESSIONS_REVOKED, iss=keys.issuer, aud=CLIENT_ID, sub=SUB)
    assert_refused(post_logout(keys.sign(as_logout)), "token_events_invalid")
    as_risc = logout_claims(keys, iss=GOOGLE_ISSUER, aud=GOOGLE_CLIENT_ID)
    assert post_risc(keys.sign(as_risc)).status_code == 202, "an unknown event type: acknowledged, ignored"
    assert alive(google) and alive(idp)


def test_risc_bodies_that_are_no_token(keys, google_person):
    assert_refused(Client().post(RISC_URL, "", content_type=SET), "required")
    assert_refused(Client().post(RISC_URL, "x" * 20_000, content_type=SET), "token_too_large", 413)
    assert_refused(Client().post(RISC_URL, "ä.b.c".encode(), content_type=SET), "token_malformed")
    assert_refused(
        Client().post(RISC_URL, '{"token": "x"}', content_type="application/json"), "unsupported_media_type", 415
    )
    assert_refused(Client().post(RISC_URL, {"token": "x"}), "required")  # a form: read by the guard, no token


def test_risc_without_a_google_app_is_not_found(keys, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": settings.SOCIALACCOUNT_PROVIDERS["openid_connect"]}
    assert_refused(post_risc(keys.sign(risc_claims())), "provider_unknown", 404)
