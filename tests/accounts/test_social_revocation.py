"""Sign in with Apple's grants revoked at disconnect and erasure (accounts/social/revocation.py),
against a real HTTP server on 127.0.0.1 standing in for Apple's revocation endpoint (the
module's `APPLE_REVOKE_URL`, patched)."""

import logging
import threading
from collections.abc import Iterator

import jwt
import pytest
from allauth.socialaccount.models import SocialAccount, SocialToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import accounts.social.revocation
from accounts.models import SealedSocialToken
from accounts.social import social_account_revoke, social_tokens_revoke
from accounts.social_providers import social_providers_from_env
from tests.accounts.test_erasure import ACCESS, REFRESH, StubProvider, _closed_port

APPLE_ID = "com.example.vault.web"  # the Services ID
TEAM_ID, KEY_ID = "TEAM123456", "KEY7654321"
UID = "001234.5f1c0ffee.0042"


@pytest.fixture
def apple_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def apple(settings, monkeypatch, apple_key) -> Iterator[StubProvider]:
    """Apple configured as the environment configures it, its revocation endpoint on 127.0.0.1."""
    pem = apple_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    settings.SOCIALACCOUNT_PROVIDERS = social_providers_from_env(
        {
            "SOCIAL_APPLE_CLIENT_ID": APPLE_ID,
            "SOCIAL_APPLE_TEAM_ID": TEAM_ID,
            "SOCIAL_APPLE_KEY_ID": KEY_ID,
            "SOCIAL_APPLE_PRIVATE_KEY": pem,
        }
    )
    server = StubProvider()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(accounts.social.revocation, "APPLE_REVOKE_URL", f"{server.url}/revoke")
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _link(person, *, refresh: str = REFRESH) -> SocialAccount:
    """A Sign in with Apple link as allauth stores it: the refresh token is the token secret."""
    account = SocialAccount.objects.create(user=person, provider="apple", uid=UID)
    SocialToken.objects.create(account=account, token=ACCESS, token_secret=refresh)
    return account


def test_the_refresh_token_is_revoked_with_a_client_secret_signed_by_the_apps_key(alice, apple, apple_key):
    account = _link(alice)

    assert social_account_revoke(account_id=account.pk) is True

    [request] = apple.revocations
    form = request["form"]
    assert {name: form[name] for name in ("client_id", "token", "token_type_hint")} == {
        "client_id": APPLE_ID,
        "token": REFRESH,
        "token_type_hint": "refresh_token",
    }
    assert request["authorization"] == "", "the client authenticates in the body, as Apple asks"
    secret = form["client_secret"]
    assert jwt.get_unverified_header(secret) == {"alg": "ES256", "kid": KEY_ID, "typ": "JWT"}
    claims = jwt.decode(secret, apple_key.public_key(), algorithms=["ES256"], audience="https://appleid.apple.com")
    assert (claims["iss"], claims["sub"]) == (TEAM_ID, APPLE_ID)
    assert 0 < claims["exp"] - claims["iat"] <= 3600
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(secret, ec.generate_private_key(ec.SECP256R1()).public_key(), algorithms=["ES256"], audience="x")


def test_a_grant_is_revoked_under_the_client_id_it_was_issued_to(alice, settings, apple, apple_key):
    """An iOS app signs in under its bundle id and hands the token over: Apple revokes it only
    for that client id, which the ID token's `aud` names."""
    ios = "com.example.vault.ios"
    apple_app = settings.SOCIALACCOUNT_PROVIDERS["apple"]["APPS"][0]
    apple_app["client_id"] = f"{APPLE_ID},{ios}"
    account = SocialAccount.objects.create(user=alice, provider="apple", uid=UID, extra_data={"sub": UID, "aud": ios})
    SocialToken.objects.create(account=account, token=ACCESS, token_secret=REFRESH)

    assert social_account_revoke(account_id=account.pk) is True

    [request] = apple.revocations
    assert request["form"]["client_id"] == ios
    claims = jwt.decode(
        request["form"]["client_secret"],
        apple_key.public_key(),
        algorithms=["ES256"],
        audience="https://appleid.apple.com",
    )
    assert claims["sub"] == ios


def test_without_a_refresh_token_the_access_token_is_revoked(alice, apple):
    account = _link(alice, refresh="")
    assert social_account_revoke(account_id=account.pk) is True
    [request] = apple.revocations
    assert (request["form"]["token"], request["form"]["token_type_hint"]) == (ACCESS, "access_token")


def test_removing_the_apple_connection_revokes_first(client, alice, apple):
    account = _link(alice)
    SocialAccount.objects.create(user=alice, provider="github", uid="another-way-in")
    client.force_login(alice)
    response = client.post("/accounts/3rdparty/", {"account": account.pk})
    assert response.status_code == 302
    assert [r["form"]["token"] for r in apple.revocations] == [REFRESH]
    assert not SocialAccount.objects.filter(pk=account.pk).exists() and not SealedSocialToken.objects.exists()


def test_an_erasure_revokes_the_apple_grant(alice, apple):
    _link(alice)
    assert social_tokens_revoke(subject_id=alice.pk) == ["apple"]
    assert len(apple.revocations) == 1


def test_apple_refusing_is_logged_without_personal_data_and_stops_nothing(alice, apple, caplog):
    apple.revocation_status = 400  # Apple's answer to an invalid token or client
    account = _link(alice)
    with caplog.at_level(logging.WARNING, logger="accounts.social.revocation"):
        assert social_tokens_revoke(subject_id=alice.pk) == []
    [line] = [record.getMessage() for record in caplog.records]
    assert line == f"Revoking the grant at provider apple failed for social account {account.pk}: HTTPError HTTP 400"


def test_apple_down_stops_nothing(alice, apple, monkeypatch, caplog):
    monkeypatch.setattr(accounts.social.revocation, "APPLE_REVOKE_URL", f"http://127.0.0.1:{_closed_port()}/revoke")
    account = _link(alice)
    assert social_account_revoke(account_id=account.pk) is False
    assert "ConnectionError" in caplog.text
    for secret in (ACCESS, REFRESH, UID):
        assert secret not in caplog.text
