"""A person signs in, gives and withdraws consent, and downloads a receipt: in a real browser."""

import pytest
from allauth.account.models import EmailAddress

from accounts.models import User
from consent.selectors import consent_is_granted

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def ada(committed_db, profile_schema):
    user = User.objects.create_user("ada@demo.example", "correct horse battery staple")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def sign_in(page, live_server):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", "ada@demo.example")
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_a_person_gives_and_withdraws_consent_and_keeps_the_receipt(page, live_server, ada):
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    sign_in(page, live_server)
    page.click("text=Your consents")
    section = page.locator("#purpose-personalization")
    assert "Not given" in section.inner_text()

    # The age gate: agreeing before telling one's age is refused, with the reason shown.
    section.locator("button[value=grant]").click()
    assert "date of birth" in page.inner_text(".messages")
    assert not consent_is_granted(subject_id=ada.id, purpose="personalization")
    page.fill("#birth-date", "1990-06-01")
    page.click("button[value=birth_date]")
    assert "date of birth is saved" in page.inner_text(".messages")

    page.locator("#purpose-personalization button[value=grant]").click()
    assert "Thank you" in page.inner_text(".messages")
    assert consent_is_granted(subject_id=ada.id, purpose="personalization")

    with page.expect_download() as download:
        page.locator("a", has_text="signed receipt").first.click()
    assert download.value.suggested_filename.endswith(".jws")

    page.locator("#purpose-personalization button[value=withdraw]").click()
    assert "Withdrawn" in page.inner_text(".messages")
    assert not consent_is_granted(subject_id=ada.id, purpose="personalization")
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_the_api_docs_render_under_the_content_security_policy(page, live_server, committed_db):
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector("text=/api/v1/consent/")
    assert not errors, errors
