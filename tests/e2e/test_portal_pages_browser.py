"""Every main page of the portal in a real browser, phone-sized and desktop-sized: it renders
without console errors or Content Security Policy violations, nothing is wider than the screen, the
skip link comes first in the focus order, and a screenshot of each is kept as a test artifact."""

import os
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings

from accounts.models import User
from consent.models import Method
from consent.services import consent_grant
from profiles.gate import RIGHTS_PURPOSE, Actor, profile_read, profile_write
from profiles.models import Source

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "correct horse battery staple"
PAGES = {
    "overview": "/",
    "profile": "/profile/",
    "consents": "/consent/",
    "connected-accounts": "/accounts/3rdparty/",
    "security": "/security/",
    "mfa": "/accounts/2fa/",
    "privacy-centre": "/privacy/",
    "who-accessed": "/privacy/access-log/",
}
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}


def artifacts_dir() -> Path:
    """var/test-artifacts/ (git ignores var/), or $TEST_ARTIFACTS_DIR in CI."""
    path = Path(os.environ.get("TEST_ARTIFACTS_DIR") or Path(settings.BASE_DIR) / "var" / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def grace(committed_db, profile_schema):
    user = User.objects.create_user("grace@demo.example", PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    values = {"given_name": "Grace", "family_name": "Hopper", "city": "Arlington", "shoe_size": "38"}
    profile_write(
        subject_id=user.pk,
        values=values,
        source=Source.SELF_SERVICE,
        purpose=RIGHTS_PURPOSE,
        actor=Actor.person(user.pk),
    )
    consent_grant(subject_id=user.pk, purpose="personalization", method=Method.WEB_FORM, age=40)
    profile_read(subject_id=user.pk, fields=["shoe_size"], purpose="personalization", actor=Actor.partner("shop-eu-1"))
    return user


def sign_in(page, live_server):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", "grace@demo.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_each_main_page_renders_cleanly(browser, live_server, grace, viewport):
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    page = context.new_page()
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        sign_in(page, live_server)
        saved = []
        for name, url in PAGES.items():
            page.goto(f"{live_server.url}{url}")
            page.wait_for_load_state("load")
            assert page.locator("main h1").count() == 1, f"{url}: one main heading"
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{url} is {overflow}px wider than the {viewport} screen"
            path = artifacts_dir() / f"portal-{name}-{viewport}.png"
            page.screenshot(path=str(path), full_page=True)
            saved.append(path)
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.className") == "skip-link", f"{url}: skip link first"
        print("\nScreenshots:", *map(str, saved), sep="\n  ")
        assert not problems, problems
    finally:
        context.close()


def test_the_profile_is_corrected_and_errors_are_shown_at_the_field(page, live_server, grace):
    sign_in(page, live_server)
    page.click("nav >> text=Your profile")
    assert page.input_value("#field-city") == "Arlington"
    page.fill("#field-birth_date", "1906-12-09")
    page.fill("#field-social_profile_url", "not a web address")
    page.click("text=Save changes")
    assert "Nothing was saved" in page.inner_text("#error-summary")
    assert page.get_attribute("#field-social_profile_url", "aria-invalid") == "true"
    page.click("#error-summary a")  # the summary links to the field at fault
    assert page.evaluate("document.activeElement.id") == "field-social_profile_url"

    page.fill("#field-social_profile_url", "")
    page.fill("#field-city", "New York")
    page.click("text=Save changes")
    assert "Saved" in page.inner_text(".messages")
    assert page.input_value("#field-city") == "New York"
    held = profile_read(
        subject_id=grace.pk, fields=["city", "birth_date"], purpose=RIGHTS_PURPOSE, actor=Actor.person(grace.pk)
    )
    assert held["city"].value == "New York" and str(held["birth_date"].value) == "1906-12-09"

    page.click("nav >> text=Who accessed your data")
    assert "shop-eu-1" in page.inner_text("main")


def current_code(secret: str) -> str:
    from tests.factories import totp_code

    return totp_code(secret, margin=6.0)  # a browser fills and submits it


def test_a_staff_member_sets_up_totp_before_reaching_the_admin(page, live_server, committed_db, staff_mfa):
    """Mandatory MFA, the whole way in a browser: the admin sends a staff member without MFA to
    set it up, then asks for the code in this session, then opens."""
    staff_mfa.auto = False  # no ready-made authenticator: this test sets one up
    member = User.objects.create_user("ops@demo.example", PASSWORD, is_staff=True, is_superuser=True)
    EmailAddress.objects.create(user=member, email=member.email, verified=True, primary=True)
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_server.url}/admin/")
    page.wait_for_url("**/accounts/login/?next=%2Fadmin%2F")
    page.fill("input[name=login]", member.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{live_server.url}/security/")
    assert "Staff accounts need two-factor authentication" in page.inner_text("main")

    page.click("text=Set up an authenticator app")
    page.wait_for_url("**/accounts/reauthenticate/?next=%2Faccounts%2F2fa%2Ftotp%2Factivate%2F")
    page.fill("input[name=password]", PASSWORD)  # allauth asks for the password again first
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url("**/accounts/2fa/totp/activate/")
    page.screenshot(path=str(artifacts_dir() / "mfa-totp-activate-desktop.png"), full_page=True)
    secret = page.locator("img[alt]").first.get_attribute("alt") or ""
    assert len(secret) >= 16, "the secret is shown for apps that cannot scan"
    page.fill("input[name=code]", current_code(secret))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state("load")
    assert "/totp/activate/" not in page.url, page.inner_text("main")

    page.goto(f"{live_server.url}/admin/")
    page.wait_for_url("**/accounts/2fa/reauthenticate/?next=%2Fadmin%2F")
    page.fill("input[name=code]", current_code(secret))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(f"{live_server.url}/admin/")
    assert "Consent vault: staff" in page.content()
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
