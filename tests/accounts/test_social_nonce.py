"""The ID token nonce for allauth's Google and Apple providers (accounts/social/oidc.py), through
their real login and callback views. As in tests/accounts/test_social.py the providers' HTTP
answers are faked at allauth's requests session (network off): the token endpoints, and Apple's
key set, whose key signs the Apple ID tokens (allauth verifies them; Google's ID token arrives
over the token request, which allauth takes as proof enough, OpenID Connect Core 3.1.3.7)."""

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import requests
from allauth.socialaccount.models import SocialAccount, SocialLogin
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import RequestFactory
from django.urls import resolve
from jwt.algorithms import ECAlgorithm

from accounts.models import User
from accounts.social import SocialAccountAdapter
from accounts.social.oidc import IdTokenNonceMismatch, id_token_nonce_check
from accounts.social_providers import social_providers_from_env
from tests.accounts.test_social import FakeSession, assert_friendly_failure

GOOGLE_ID = "vault-web.apps.googleusercontent.com"
APPLE_ID = "com.example.vault.web"  # the Services ID
APPLE_TEAM, APPLE_KEY_ID = "TEAM123456", "KEY7654321"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
APPLE_TOKEN_URL = "https://appleid.apple.com/auth/token"
APPLE_KEYS_URL = "https://appleid.apple.com/auth/keys"
ECHO = object()  # the provider echoes the authorization request's nonce


class FakeGoogleAndApple:
    """Google's and Apple's token endpoints and Apple's key set. Each code is bound to the
    authorization request it was issued for, whose nonce goes into the ID token."""

    def __init__(self) -> None:
        self.authorizations: dict[str, dict[str, str]] = {}
        self.nonce: Any = ECHO  # or a nonce of its own, or None for an ID token without one
        self.apple_signing_key = ec.generate_private_key(ec.SECP256R1())  # Apple's ID token key
        self.token_requests: list[dict[str, Any]] = []

    def _claims(self, *, issuer: str, audience: str, code: str) -> dict[str, Any]:
        authorization = self.authorizations.get(code.removeprefix("code-"), {})
        now = int(time.time())
        claims = {"iss": issuer, "aud": audience, "sub": "000123.abc", "iat": now, "exp": now + 300}
        claims |= {"email": "robin.nonce@example.com", "email_verified": True}
        nonce = authorization.get("nonce") if self.nonce is ECHO else self.nonce
        if nonce is not None:
            claims["nonce"] = nonce
        return claims

    def answer(self, method: str, url: str, data: dict[str, Any] | None = None) -> requests.Response:
        data = data or {}
        if (method.upper(), url) == ("POST", GOOGLE_TOKEN_URL):
            self.token_requests.append(data)
            claims = self._claims(issuer="https://accounts.google.com", audience=GOOGLE_ID, code=data["code"])
            body: Any = {"access_token": "g-access", "token_type": "Bearer", "expires_in": 3600}
            body["id_token"] = jwt.encode(claims, "google-signs-with-its-own-key-32b", algorithm="HS256")
        elif (method.upper(), url) == ("POST", APPLE_TOKEN_URL):
            self.token_requests.append(data)
            claims = self._claims(issuer="https://appleid.apple.com", audience=APPLE_ID, code=data["code"])
            body = {"access_token": "a-access", "refresh_token": "a-refresh", "token_type": "Bearer"}
            body["id_token"] = jwt.encode(
                claims, self.apple_signing_key, algorithm="ES256", headers={"kid": "apple-key-1"}
            )
        elif (method.upper(), url) == ("GET", APPLE_KEYS_URL):
            jwk = json.loads(ECAlgorithm.to_jwk(self.apple_signing_key.public_key()))
            body = {"keys": [{**jwk, "kid": "apple-key-1", "alg": "ES256", "use": "sig"}]}
        else:
            raise AssertionError(f"unexpected request {method} {url}")
        response = requests.Response()
        response.status_code = 200
        response.url = url
        response._content = json.dumps(body).encode()
        response.headers["content-type"] = "application/json"
        return response


def apple_private_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def providers(settings, monkeypatch, profile_schema) -> FakeGoogleAndApple:
    """Google and Apple configured as the environment configures them."""
    settings.SOCIALACCOUNT_PROVIDERS = social_providers_from_env(
        {
            "SOCIAL_GOOGLE_CLIENT_ID": GOOGLE_ID,
            "SOCIAL_GOOGLE_SECRET": "google-client-secret",
            "SOCIAL_APPLE_CLIENT_ID": APPLE_ID,
            "SOCIAL_APPLE_TEAM_ID": APPLE_TEAM,
            "SOCIAL_APPLE_KEY_ID": APPLE_KEY_ID,
            "SOCIAL_APPLE_PRIVATE_KEY": apple_private_key_pem(),
        }
    )
    fake = FakeGoogleAndApple()
    monkeypatch.setattr(SocialAccountAdapter, "get_requests_session", lambda self: FakeSession(fake))  # type: ignore[arg-type]
    return fake


AUTHORIZE = {"google": "accounts.google.com", "apple": "appleid.apple.com"}


def start(client: Any, fake: FakeGoogleAndApple, provider: str) -> str:
    """Begin a login; returns the state the provider is asked to echo back."""
    response = client.post(f"/accounts/{provider}/login/")
    assert response.status_code == 302, response.content
    location = urlparse(response["Location"])
    assert location.netloc == AUTHORIZE[provider]
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    fake.authorizations[query["state"]] = query
    return query["state"]


def callback(client: Any, provider: str, state: str) -> Any:
    """The provider sends the browser back with a code. Apple form-posts to its callback, which
    stores the answer and redirects to the finish URL, where the login completes."""
    params = {"code": f"code-{state}", "state": state}
    if provider == "google":
        return client.get("/accounts/google/login/callback/", params)
    posted = client.post("/accounts/apple/login/callback/", params)
    assert posted.status_code == 302 and "/accounts/apple/login/callback/finish/" in posted["Location"]
    return client.get(posted["Location"])


@pytest.mark.parametrize("provider", ["google", "apple"])
@pytest.mark.django_db
def test_each_login_sends_a_fresh_nonce_kept_in_allauths_state(client, providers, provider):
    first, second = start(client, providers, provider), start(client, providers, provider)
    nonces = [providers.authorizations[first]["nonce"], providers.authorizations[second]["nonce"]]
    assert all(len(nonce) >= 40 for nonce in nonces) and nonces[0] != nonces[1]
    states = client.session["socialaccount_states"]
    assert [states[first][0]["oidc_nonce"], states[second][0]["oidc_nonce"]] == nonces
    response = client.post(f"/accounts/{provider}/login/?auth_params=nonce%3Dchosen-by-attacker")
    assert parse_qs(urlparse(response["Location"]).query)["nonce"] != ["chosen-by-attacker"]


@pytest.mark.parametrize("provider", ["google", "apple"])
@pytest.mark.django_db
def test_the_nonce_the_provider_echoes_is_accepted(client, providers, provider):
    response = callback(client, provider, start(client, providers, provider))
    assert response.status_code == 302 and response["Location"] == "/accounts/3rdparty/signup/"


@pytest.mark.parametrize("provider", ["google", "apple"])
@pytest.mark.parametrize(
    "nonce",
    ["a-nonce-from-another-authorization-request", None, ""],
    ids=["another-nonce", "no-nonce", "empty-nonce"],
)
@pytest.mark.django_db
def test_an_id_token_without_this_logins_nonce_is_refused(client, providers, caplog, provider, nonce):
    providers.nonce = nonce
    assert_friendly_failure(callback(client, provider, start(client, providers, provider)))
    [line] = [record.getMessage() for record in caplog.records if record.name == "accounts.social"]
    assert line == f"Social login with {provider} failed: unknown, IdTokenNonceMismatch"


@pytest.mark.django_db
def test_apples_callback_authenticates_with_a_client_secret_signed_by_the_apps_key(client, providers, settings):
    """The token request is allauth's own (the client secret JWT it makes), unchanged by the nonce."""
    callback(client, "apple", start(client, providers, "apple"))
    [request] = providers.token_requests
    pem = settings.SOCIALACCOUNT_PROVIDERS["apple"]["APPS"][0]["settings"]["certificate_key"]
    public = serialization.load_pem_private_key(pem.encode(), password=None).public_key()
    claims = jwt.decode(request["client_secret"], public, algorithms=["ES256"], audience="https://appleid.apple.com")
    assert (claims["iss"], claims["sub"]) == (APPLE_TEAM, APPLE_ID)


@pytest.mark.django_db
def test_an_id_token_of_another_login_cannot_connect_a_google_account(client, providers, alice):
    client.force_login(alice)
    response = client.post("/accounts/google/login/", {"process": "connect"})
    state = parse_qs(urlparse(response["Location"]).query)["state"][0]
    providers.authorizations[state] = {"nonce": "nonce-of-the-attackers-own-login"}
    response = callback(client, "google", state)
    assert response.status_code == 401 and "Signing in did not work" in response.content.decode()
    assert not SocialAccount.objects.exists() and User.objects.count() == 1


# --- The check itself, by the URL the request resolved to -------------------------------------------
def _login(provider: str, extra_data: dict[str, Any], nonce: str | None) -> SocialLogin:
    state = {} if nonce is None else {"oidc_nonce": nonce}
    login = SocialLogin(account=SocialAccount(provider=provider, uid="1", extra_data=extra_data))
    login.state = state
    return login


def _request(path: str) -> Any:
    request = RequestFactory().get(path)
    request.resolver_match = resolve(path)
    return request


@pytest.mark.parametrize(
    ("path", "claims_at"),
    [
        ("/accounts/google/login/callback/", "top"),
        ("/accounts/apple/login/callback/finish/", "top"),
        ("/accounts/oidc/testidp/login/callback/", "id_token"),
    ],
)
def test_the_check_reads_the_claims_where_each_provider_puts_them(path, claims_at):
    request = _request(path)

    def extra(nonce: str) -> dict[str, Any]:
        claims = {"sub": "1", "nonce": nonce}
        return claims if claims_at == "top" else {"id_token": claims, "userinfo": {"sub": "1", "nonce": nonce}}

    id_token_nonce_check(request=request, sociallogin=_login("p", extra("n-1"), "n-1"))
    for login in (
        _login("p", extra("n-2"), "n-1"),
        _login("p", extra("n-1"), None),
        _login("p", {"sub": "1"}, "n-1"),
        _login("p", {"id_token": {"sub": "1"}, "nonce": "n-1"} if claims_at == "id_token" else {}, "n-1"),
    ):
        with pytest.raises(IdTokenNonceMismatch):
            id_token_nonce_check(request=request, sociallogin=login)


@pytest.mark.parametrize("path", ["/accounts/google/login/token/", "/accounts/apple/login/callback/", "/"])
def test_logins_by_other_routes_are_not_checked(path):
    """Google's One Tap and the headless token flow hand over an ID token with a nonce we never
    chose (the app checks it); Apple's form-post callback only redirects to the finish URL."""
    id_token_nonce_check(request=_request(path), sociallogin=_login("google", {"sub": "1"}, None))
