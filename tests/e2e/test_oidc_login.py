"""Social sign-up against a real OpenID Connect provider (the npm package oidc-provider) on
127.0.0.1, in a real browser: the consent and import screen appears, only the claims the person
agreed to become profile values, and nothing the provider sent stays in plaintext. The login is
bound to its authorization request by a nonce; what the provider sends that cannot be used is
said on the screen; a provider that is down gives the friendly error page.

The provider's packages are installed by this module's fixture (`npm ci` from the committed
lock file) when missing. Without Node.js the test is skipped on a developer machine and fails in
CI, like the browser tests without Chromium.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount, SocialToken
from django.conf import settings
from django.db import connection

from accounts.models import SealedSocialAccountData, SealedSocialToken, User
from accounts.social import social_account_read
from profiles.gate import ACCOUNT_PURPOSE, RIGHTS_PURPOSE, Actor, profile_read

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
PROVIDER_ID = "e2eidp"
CLIENT_ID, CLIENT_SECRET = "vault-e2e", "vault-e2e-client-secret"  # as in oidc/provider.js
# What provider.js answers for every login name (the e-mail is <login>@oidc.example).
CLAIMS = {"name": "Marguerite Oidcperson", "family_name": "Oidcperson", "birthdate": "1984-11-23"}
ARTIFACTS = Path(settings.BASE_DIR) / "var" / "test-artifacts" / "social"


def _screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _need(tool: str) -> str:
    found = shutil.which(tool)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{tool} is missing: the CI machine should have Node.js and npm.")
    pytest.skip(f"{tool} is not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen[Any], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"oidc-provider exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own 127.0.0.1 URL)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("oidc-provider did not answer within 30 s")


@contextlib.contextmanager
def _running_provider(live_server: Any, log_path: Path, *options: str) -> Iterator[str]:
    """oidc-provider on a free port of 127.0.0.1, whose one client may return to the live
    server; yields its URL (and stops it on leaving, if it is still running)."""
    node = _need("node")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        npm = _need("npm")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR, check=True, timeout=300)
    port = _free_port()
    callback = f"/accounts/oidc/{PROVIDER_ID}/login/callback/"
    redirects = ",".join(
        [f"{live_server.url}{callback}", f"{live_server.url.replace('localhost', '127.0.0.1')}{callback}"]
    )
    log = log_path.open("w")
    # Claims changed at the provider (the refresh tests): a file next to the log, read at each look-up.
    env = {**os.environ, "OIDC_CLAIMS_FILE": str(log_path.with_name("claims.json"))}
    process = subprocess.Popen(
        [node, "provider.js", str(port), redirects, *options],
        cwd=OIDC_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{url}/.well-known/openid-configuration", process)
        yield url
    finally:
        _stop(process)
        log.close()


def _stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def oidc_provider(live_server, tmp_path_factory) -> Iterator[str]:
    """A running oidc-provider for the whole session; yields its URL."""
    with _running_provider(live_server, tmp_path_factory.mktemp("oidc") / "provider.log") as url:
        yield url


def _use_provider(settings: Any, server_url: str) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": PROVIDER_ID,
                    "name": "Test Provider",
                    "client_id": CLIENT_ID,
                    "secret": CLIENT_SECRET,
                    "settings": {"server_url": server_url, "fetch_userinfo": True},
                }
            ]
        }
    }
    # Leaving for the provider's sign-in page is a form's redirect, which CSP form-action governs.
    settings.SECURE_CSP = {**settings.SECURE_CSP, "form-action": [*settings.SECURE_CSP["form-action"], server_url]}


@pytest.fixture
def oidc_app(settings, oidc_provider) -> str:
    _use_provider(settings, oidc_provider)
    return oidc_provider


def _only_local(route: Any) -> None:
    """Nothing leaves the machine (oidc-provider's pages link a web font)."""
    host = route.request.url.split("/")[2].split(":")[0]
    if host in ("127.0.0.1", "localhost"):
        route.continue_()
    else:
        route.abort()


def _authorization_requests(page: Any, provider_url: str) -> list[dict[str, str]]:
    """Collects the query of every authorization request the browser makes to the provider."""
    seen: list[dict[str, str]] = []

    def record(request: Any) -> None:
        if request.url.startswith(f"{provider_url}/auth?"):
            seen.append({name: values[0] for name, values in parse_qs(urlsplit(request.url).query).items()})

    page.on("request", record)
    return seen


def _leave_for_provider(page: Any, live_server: Any, provider_url: str) -> None:
    """Our page first: allauth asks before leaving for the provider (no sign-in on a bare GET)."""
    page.goto(f"{live_server.url}/accounts/oidc/{PROVIDER_ID}/login/")
    page.click("button[type=submit]")
    page.wait_for_url(f"{provider_url}/interaction/**")


def _sign_in_at_provider(page: Any, login: str) -> None:
    """The provider's own pages: its development login form, then its consent form."""
    page.wait_for_selector("input[name=login]")
    page.fill("input[name=login]", login)
    if page.locator("input[name=password]").count():
        page.fill("input[name=password]", "any password works here")
    page.click("button[type=submit]")
    page.wait_for_selector("button:has-text('Continue')")
    page.click("button:has-text('Continue')")


def _all_rows(prefix: str) -> str:
    """Every row of every table whose name starts with `prefix`, as text: a dump's view."""
    rows: list[str] = []
    with connection.cursor() as cursor:
        tables = [t for t in connection.introspection.table_names(cursor) if t.startswith(prefix)]
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 (introspected names)
            rows.extend(repr(row) for row in cursor.fetchall())
    assert tables, f"no {prefix}* tables found"
    return "\n".join(rows)


def test_social_sign_up_through_a_real_openid_connect_provider(
    page, live_server, oidc_app, committed_db, profile_schema
):
    page.route("**/*", _only_local)
    authorizations = _authorization_requests(page, oidc_app)
    login = "marguerite"
    email = f"{login}@oidc.example"

    page.goto(f"{live_server.url}/accounts/oidc/{PROVIDER_ID}/login/")
    _screenshot(page, "1-leave-for-provider")
    page.click("button[type=submit]")
    page.wait_for_url(f"{oidc_app}/interaction/**")
    _sign_in_at_provider(page, login)

    # Back at the vault: the consent and import screen, before any account exists.
    page.wait_for_url(f"{live_server.url}/accounts/3rdparty/signup/")
    assert not User.objects.filter(email=email).exists()
    screen = page.inner_text("main")
    assert "Copy from Test Provider into your profile?" in screen
    assert f"Your birthday: {CLAIMS['birthdate']}" in screen
    assert "Your first name: Marguerite" in screen
    assert not page.locator("input[name=import_fields]:checked").count(), "nothing is ticked in advance"
    _screenshot(page, "2-consent-and-import")

    page.check("input[name=import_fields][value=birth_date]")
    if page.locator("select[name=country]").count():  # the consent part of the form (portal/forms.py)
        page.select_option("select[name=country]", "NL")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/3rdparty/signup/" not in url)
    page.goto(f"{live_server.url}/accounts/3rdparty/")
    assert "Test Provider, connected on" in page.inner_text("main")
    _screenshot(page, "3-connected-accounts")

    user = User.objects.get(email=email)
    held = profile_read(
        subject_id=user.pk,
        fields=["birth_date", "given_name", "family_name"],
        purpose=RIGHTS_PURPOSE,
        actor=Actor.person(user.pk),
    )
    assert set(held) == {"birth_date"}, "only the claim the person agreed to was imported"
    assert str(held["birth_date"].value) == CLAIMS["birthdate"]
    assert (held["birth_date"].source, held["birth_date"].source_name) == ("social", PROVIDER_ID)

    # allauth's tables hold nothing the provider sent: empty columns, and no claim or token anywhere.
    account = SocialAccount.objects.get(user=user)
    assert account.extra_data == {}
    token = SocialToken.objects.get(account=account)
    assert (token.token, token.token_secret) == ("", "")
    sealed = social_account_read(account_id=account.pk, purpose=ACCOUNT_PURPOSE, actor=Actor.system("e2e"))
    [tokens] = sealed.tokens
    assert tokens.access_token and tokens.refresh_token, "the provider issued both; both are sealed"
    assert sealed.extra_data["userinfo"]["birthdate"] == CLAIMS["birthdate"]
    # The authorization request carried a nonce; the provider's ID token echoed it, and it was
    # accepted because it is the one kept for this login.
    [authorization] = authorizations
    assert len(authorization["nonce"]) >= 40
    assert sealed.extra_data["id_token"]["nonce"] == authorization["nonce"]
    dump = _all_rows("socialaccount_")
    for secret in (tokens.access_token, tokens.refresh_token, CLAIMS["name"], CLAIMS["family_name"], "1984-11-23"):
        assert secret not in dump, "a provider value is in plaintext in allauth's tables"
    assert email not in dump
    assert SealedSocialAccountData.objects.filter(subject_id=user.pk).exists()
    assert SealedSocialToken.objects.filter(subject_id=user.pk).exists()


def _error_page_status(page: Any, action: Any, path_part: str) -> int:
    """Runs `action` and returns the status of the page it lands on, whose URL has `path_part`."""

    def lands(response: Any) -> bool:
        return path_part in response.url and response.request.is_navigation_request()

    with page.expect_response(lands) as info:
        action()
    return info.value.status


def test_an_id_token_for_another_authorization_request_is_refused(
    page, live_server, oidc_app, committed_db, profile_schema, caplog
):
    """The browser's login is started here (its state and nonce kept in this session), but the
    code that comes back was issued for an authorization request with another nonce, as an
    injected code would be: the provider's ID token names that nonce, and the login is refused."""
    page.route("**/*", _only_local)
    authorizations = _authorization_requests(page, oidc_app)
    _leave_for_provider(page, live_server, oidc_app)
    [ours] = authorizations
    forged = {**ours, "nonce": "a-nonce-from-someone-elses-login-0123456789abcdef"}
    page.goto(f"{oidc_app}/auth?{urlencode(forged)}")
    status = _error_page_status(page, lambda: _sign_in_at_provider(page, "mallory"), "/login/callback/")

    assert status == 401
    assert "Signing in did not work" in page.inner_text("main")
    _screenshot(page, "nonce-refused")
    lines = [record.getMessage() for record in caplog.records if record.name == "accounts.social"]
    assert lines == [f"Social login with {PROVIDER_ID} failed: unknown, IdTokenNonceMismatch"]
    assert not User.objects.exists() and not SocialAccount.objects.exists()
    assert authorizations[-1]["nonce"] == forged["nonce"], "the provider was asked with the other nonce"


def test_an_address_we_cannot_mail_is_explained_and_another_one_asked_for(
    page, live_server, oidc_app, committed_db, profile_schema
):
    page.route("**/*", _only_local)
    _leave_for_provider(page, live_server, oidc_app)
    _sign_in_at_provider(page, "zoe")

    page.wait_for_url(f"{live_server.url}/accounts/3rdparty/signup/")
    screen = page.inner_text("main")
    assert (
        "Test Provider gave us zoë.ångström@example.test, but we cannot send mail to an address with "
        "non-ASCII characters before the @; please use another address."
    ) in screen
    assert page.input_value("input[name=email]") == ""
    _screenshot(page, "address-not-mailable")

    page.fill("input[name=email]", "zoë.ångström@example.test")
    if page.locator("select[name=country]").count():
        page.select_option("select[name=country]", "SE")
    page.click("button[type=submit]")
    page.wait_for_selector(".has-error")
    assert "We cannot send mail to an address with non-ASCII characters before the @" in page.inner_text("main")
    assert not User.objects.exists()

    page.fill("input[name=email]", "zoe.angstrom@example.test")
    if page.locator("select[name=country]").count():
        page.select_option("select[name=country]", "SE")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/3rdparty/signup/" not in url)
    assert User.objects.get().email == "zoe.angstrom@example.test"


def test_a_claim_too_long_for_its_field_is_shown_as_not_copied(
    page, live_server, oidc_app, committed_db, profile_schema
):
    page.route("**/*", _only_local)
    _leave_for_provider(page, live_server, oidc_app)
    _sign_in_at_provider(page, "longname")

    page.wait_for_url(f"{live_server.url}/accounts/3rdparty/signup/")
    unusable = page.inner_text("#import-unusable")
    assert "Your first name: Wolfeschlegelsteinhausenbergerdorff" in unusable
    assert "(not copied: longer than this field allows (100 characters))" in unusable
    assert not page.locator("input[name=import_fields][value=given_name]").count(), "nothing to tick"
    assert page.locator("input[name=import_fields][value=family_name]").count(), "the rest is offered"
    _screenshot(page, "claim-too-long")


def test_the_sign_in_button_with_the_provider_down(page, live_server, settings, committed_db):
    closed = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    _use_provider(settings, closed)
    page.route("**/*", _only_local)
    page.goto(f"{live_server.url}/accounts/oidc/{PROVIDER_ID}/login/")
    status = _error_page_status(page, lambda: page.click("button[type=submit]"), f"/oidc/{PROVIDER_ID}/login/")
    assert status == 502
    assert "The provider did not answer" in page.inner_text("main")
    _screenshot(page, "provider-down-at-start")


def test_the_provider_going_down_before_the_browser_comes_back(
    page, live_server, settings, committed_db, profile_schema, tmp_path
):
    """A provider of its own for this test, which stops right after sending the browser back
    with a code: the callback's calls to it (discovery, token) find nobody."""
    log = tmp_path / "provider.log"
    with _running_provider(live_server, log, "--exit-after-authorization") as url:
        _use_provider(settings, url)
        page.route("**/*", _only_local)
        _leave_for_provider(page, live_server, url)
        status = _error_page_status(page, lambda: _sign_in_at_provider(page, "marguerite"), "/login/callback/")

    assert "stopping as asked" in log.read_text()
    assert status == 502
    assert "The provider did not answer" in page.inner_text("main")
    assert not User.objects.exists() and not SocialAccount.objects.exists()
    _screenshot(page, "provider-down-at-callback")
