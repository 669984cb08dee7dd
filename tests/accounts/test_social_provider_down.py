"""A provider that is down, slow or answering nonsense: the friendly "Signing in did not work" page
(502 Bad Gateway, docs/social-login.md) and one log line without personal data, never a 500 with
a traceback. The provider here is real HTTP on 127.0.0.1 (a closed port, or a small stub server
started by the test), so allauth's own requests code meets real connection errors and timeouts.
"""

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from allauth.socialaccount.models import SocialAccount, SocialToken

from accounts.models import User

PROVIDER_ID = "stubidp"
EMAIL = "kim.outage@example.com"
ACCESS = "access-7c1e9a40d2b5"


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StubIdP(ThreadingHTTPServer):
    """An OpenID Connect provider's HTTP side whose endpoints can be told to fail."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.discovery = "ok"  # ok | 500 | not-json
        self.token = "ok"  # ok | 500 | close | slow | not-json
        self.userinfo = "ok"  # ok | 503
        self.slow_seconds = 0.0


class _Handler(BaseHTTPRequestHandler):
    server: StubIdP

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up waiting (the timeout tests)
            self.close_connection = True

    def _answer(self, mode: str, ok: dict[str, Any]) -> None:
        if mode == "close":
            self.close_connection = True  # no answer at all: the client sees the connection drop
            return
        if mode == "slow":
            time.sleep(self.server.slow_seconds)
        if mode in ("500", "503"):
            self._send(int(mode), b'{"error": "server_error"}')
        elif mode == "not-json":
            self._send(200, b"<html>maintenance</html>")
        else:
            self._send(200, json.dumps(ok).encode())

    def do_GET(self) -> None:
        base = self.server.url
        if self.path.startswith("/.well-known/openid-configuration"):
            config = {
                "issuer": base,
                "authorization_endpoint": f"{base}/auth",
                "token_endpoint": f"{base}/token",
                "userinfo_endpoint": f"{base}/me",
                "jwks_uri": f"{base}/jwks",
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
            }
            self._answer(self.server.discovery, config)
        elif self.path.startswith("/me"):
            self._answer(self.server.userinfo, {"sub": "kim-1", "email": EMAIL, "email_verified": True})
        else:
            self._send(404, b"{}")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer(self.server.token, {"access_token": ACCESS, "token_type": "Bearer", "expires_in": 60})


def _configure(settings, server_url: str) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": PROVIDER_ID,
                    "name": "Stub IdP",
                    "client_id": "vault-stub",
                    "secret": "stub-secret",
                    "settings": {"server_url": server_url, "fetch_userinfo": True},
                }
            ]
        }
    }


@pytest.fixture
def stub(settings) -> Iterator[StubIdP]:
    server = StubIdP()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _configure(settings, server.url)
    settings.SOCIALACCOUNT_REQUESTS_TIMEOUT = 0.5
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def start(client) -> str:
    response = client.post(f"/accounts/oidc/{PROVIDER_ID}/login/")
    assert response.status_code == 302, response.content
    return parse_qs(urlparse(response["Location"]).query)["state"][0]


def callback(client, state: str):
    return client.get(f"/accounts/oidc/{PROVIDER_ID}/login/callback/", {"code": "code-secret-4b7f", "state": state})


def assert_provider_failed(response, caplog) -> None:
    """The friendly page with 502, nothing created, and one log line without personal data."""
    assert response.status_code == 502
    page = response.content.decode()
    assert "Signing in did not work" in page and "Nothing was created" in page
    assert "did not answer, or answered with an error" in page
    assert not User.objects.exists() and not SocialAccount.objects.exists() and not SocialToken.objects.exists()
    ours = [record for record in caplog.records if record.name == "accounts.social"]
    assert len(ours) == 1, [record.getMessage() for record in ours]
    line = ours[0].getMessage()
    assert line.startswith(f"Social login with {PROVIDER_ID} failed: provider_failed")
    for record in caplog.records:
        assert record.exc_info is None, "no traceback in the log"
        message = record.getMessage()
        for private in (EMAIL, ACCESS, "code-secret", "state=", "?"):
            assert private not in message, f"{private!r} in the log line {message!r}"


def _our_line(caplog) -> str:
    [line] = [record.getMessage() for record in caplog.records if record.name == "accounts.social"]
    return line


# --- The sign-in button: the login start fetches the discovery document ------------------------
@pytest.mark.django_db
def test_the_sign_in_button_with_the_provider_unreachable(client, settings, caplog):
    _configure(settings, f"http://127.0.0.1:{_closed_port()}")
    with caplog.at_level(logging.INFO):
        response = client.post(f"/accounts/oidc/{PROVIDER_ID}/login/")
    assert_provider_failed(response, caplog)
    assert "ConnectionError" in _our_line(caplog)
    assert "socialaccount_states" not in client.session, "no login was started"


@pytest.mark.parametrize("discovery", ["500", "not-json", "slow"])
@pytest.mark.django_db
def test_the_sign_in_button_with_a_failing_discovery_document(client, stub, caplog, discovery):
    stub.discovery, stub.slow_seconds = discovery, 2.0
    with caplog.at_level(logging.INFO):
        response = client.post(f"/accounts/oidc/{PROVIDER_ID}/login/")
    assert_provider_failed(response, caplog)


# --- The callback: discovery again, then the token and userinfo calls -------------------------
@pytest.mark.parametrize("token", ["500", "close", "slow", "not-json"])
@pytest.mark.django_db
def test_the_callback_with_a_failing_token_endpoint(client, stub, caplog, token):
    state = start(client)
    stub.token, stub.slow_seconds = token, 2.0
    with caplog.at_level(logging.INFO):
        response = callback(client, state)
    assert_provider_failed(response, caplog)


@pytest.mark.django_db
def test_the_callback_with_a_failing_userinfo_endpoint(client, stub, caplog):
    state = start(client)
    stub.userinfo = "503"
    with caplog.at_level(logging.INFO):
        response = callback(client, state)
    assert_provider_failed(response, caplog)
    assert "HTTP 503" in _our_line(caplog)


@pytest.mark.django_db
def test_the_callback_after_the_provider_went_down(client, stub, caplog):
    """The person signed in at the provider; by the time the browser comes back it is gone, so
    even the discovery document (fetched again for the callback) cannot be had."""
    state = start(client)
    stub.shutdown()
    stub.server_close()
    with caplog.at_level(logging.INFO):
        response = callback(client, state)
    assert_provider_failed(response, caplog)


@pytest.mark.django_db
def test_an_app_starting_a_login_through_the_headless_api_is_sent_back_with_the_error(client, settings, caplog):
    """allauth's headless API starts a provider login with a form post and expects the browser
    back at the app's own page, with the error in the query, not the portal's error page."""
    _configure(settings, f"http://127.0.0.1:{_closed_port()}")
    with caplog.at_level(logging.INFO):
        response = client.post(
            "/_allauth/browser/v1/auth/provider/redirect",
            {"provider": PROVIDER_ID, "callback_url": "/app/signed-in", "process": "login"},
        )
    assert response.status_code == 302
    location = urlparse(response["Location"])
    assert location.path == "/app/signed-in" and parse_qs(location.query)["error"] == ["unknown"]
    assert "ConnectionError" in _our_line(caplog)


def test_the_log_line_names_the_endpoint_without_its_query_string():
    import requests

    from accounts.social.oidc import provider_failure_summary

    request = requests.Request("GET", "https://idp.test/me?access_token=at-secret&email=kim%40example.com").prepare()
    response = requests.Response()
    response.status_code, response.request, response.url = 503, request, request.url
    error = requests.HTTPError("503 for url: " + str(request.url), request=request, response=response)
    assert provider_failure_summary(error) == "HTTPError (GET idp.test/me) HTTP 503"
    assert provider_failure_summary(requests.exceptions.JSONDecodeError("Expecting value", "<html>", 0)) == (
        "JSONDecodeError"
    )
    assert provider_failure_summary(KeyError("sub")) == "KeyError"
