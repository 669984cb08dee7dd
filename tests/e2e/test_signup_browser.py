"""A person signs up with consents, verifies the address from the mail, signs in, changes a consent
and signs out: in a real browser against the live server. A screenshot of each main page is kept
in var/test-artifacts/signup/ (var/ is not versioned)."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import cache

from accounts.models import User
from consent.models import ConsentEvent, EventType, Method
from consent.selectors import consent_is_granted

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = Path(settings.BASE_DIR) / "var" / "test-artifacts" / "signup"
EMAIL = "grace@demo.example"
PASSWORD = "a sturdy passphrase 42"


@pytest.fixture
def shots():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nScreenshots: {ARTIFACTS}")

    def shot(page, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return shot


@pytest.fixture
def fresh(committed_db, profile_schema):
    cache.clear()  # allauth's rate limits count in the cache
    mail.outbox = []
    yield
    cache.clear()


def test_sign_up_with_consents_verify_sign_in_change_a_consent_and_sign_out(page, live_server, fresh, shots) -> None:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    # Sign up: two purposes ticked, the rest left as they come (unticked).
    page.goto(f"{live_server.url}/accounts/signup/")
    assert page.is_checked("#id_consent_personalization") is False
    page.fill("#id_email", EMAIL)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.get_by_label("Date of birth").fill("1990-06-01")  # found by its label: they are tied
    page.get_by_label("Country you live in").select_option("NL")
    page.get_by_label("Personalization and recommendations").check()
    page.get_by_label("Analytics").check()
    with page.context.expect_page() as policy_tab:
        page.get_by_role("link", name=re.compile("Read the policy")).first.click()
    assert "/consent/policies/" in policy_tab.value.url
    policy_tab.value.close()
    shots(page, "1-signup")
    page.get_by_role("button", name="Create my account").click()
    page.wait_for_url(f"{live_server.url}/accounts/confirm-email/")
    shots(page, "2-verification-sent")

    user = User.objects.get(email=EMAIL)
    grants = ConsentEvent.objects.filter(subject_id=user.pk, event_type=EventType.GRANT)
    assert {event.purpose.slug for event in grants} == {"personalization", "analytics"}
    assert {event.method for event in grants} == {Method.WEB_FORM}

    # Not yet: the address must be verified first.
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", EMAIL)
    page.fill("#id_password", PASSWORD)
    page.locator("form.login").get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/accounts/confirm-email/")

    # The link from the mail.
    link = re.search(r"https?://[^\s]+/accounts/confirm-email/[^/\s]+/", str(mail.outbox[-1].body))
    assert link, mail.outbox[-1].body
    path = link.group(0).split("/accounts/", 1)[1]
    page.goto(f"{live_server.url}/accounts/{path}")
    shots(page, "3-confirm-email")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile(r".*/accounts/login/$"))

    page.fill("#id_login", EMAIL)
    page.fill("#id_password", PASSWORD)
    shots(page, "4-login")
    page.locator("form.login").get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    shots(page, "5-home")

    # The consent page: withdraw one, and see it in the history.
    page.goto(f"{live_server.url}/consent/")
    section = page.locator("#purpose-personalization")
    assert "Granted" in section.inner_text()
    shots(page, "6-consents")
    section.get_by_role("button", name=re.compile("Withdraw")).click()
    page.wait_for_url(f"{live_server.url}/consent/")
    assert "Withdrawn" in page.locator("#purpose-personalization").inner_text()
    assert not consent_is_granted(subject_id=user.pk, purpose="personalization")
    assert consent_is_granted(subject_id=user.pk, purpose="analytics")
    history = page.locator("main").inner_text()
    assert re.search(r"Withdraw\S*\s.*Personalization and recommendations", history), history
    shots(page, "7-consent-withdrawn")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/")
    assert page.get_by_role("link", name="Sign in").first.is_visible()
    shots(page, "8-signed-out")
    assert "_auth_user_id" not in str(page.context.cookies())
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_the_sign_up_page_fits_a_phone_and_shows_errors_first(browser, live_server, fresh, shots):
    context = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/signup/")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shots(page, "phone-1-signup")
        page.get_by_label("Personalization and recommendations").check()
        page.get_by_role("button", name="Create my account").click()
        summary = page.locator("#error-summary")
        summary.wait_for()
        assert "Tell us your date of birth" in summary.inner_text()
        # Each error in the summary leads to its field.
        summary.get_by_role("link", name=re.compile("Date of birth")).click()
        assert page.evaluate("document.activeElement.id") == "id_birth_date"
        assert page.get_attribute("#id_birth_date", "aria-invalid") == "true"
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shots(page, "phone-2-signup-errors")
        assert not User.objects.exists()
    finally:
        context.close()
