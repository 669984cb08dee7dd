"""Registration with consent, through the real sign-up page and allauth's headless API; login,
e-mail verification, login by code and password reset."""

import datetime
import re
import uuid

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from accounts.models import User
from consent.models import ConsentEvent, ConsentStatus, EventType, Method
from consent.selectors import consent_is_granted, consent_states
from consent.services import policy_version_publish
from profiles.gate import RIGHTS_PURPOSE, Actor, profile_read
from profiles.models import Source

SIGNUP = "/accounts/signup/"
HEADLESS_SIGNUP = "/_allauth/app/v1/auth/signup"
PASSWORD = "a sturdy passphrase 42"
CONSENT_BASED = ["push-notifications", "personalization", "analytics", "advertising-partners", "loyalty-programme"]


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """allauth counts attempts in the cache, which outlives a test: start each one at zero."""
    cache.clear()
    yield
    cache.clear()


def policy_labels() -> dict[str, str]:
    """The label of the version in force of each purpose (what the page shows)."""
    return {
        item.purpose: item.current_policy.label
        for item in consent_states(subject_id=uuid.uuid4())
        if item.current_policy is not None
    }


def form_data(**overrides):
    data = {
        "email": "new.person@example.com",
        "password1": PASSWORD,
        "password2": PASSWORD,
        "birth_date": "1990-06-01",
        "country": "NL",
        "consents": ["personalization", "analytics"],
    }
    data.update({f"policy_{slug}": label for slug, label in policy_labels().items()})
    data.update(overrides)
    return data


def years_ago(years: int) -> str:
    today = timezone.localdate()
    return today.replace(year=today.year - years).isoformat()


def nothing_created():
    assert not User.objects.exists()
    assert not ConsentEvent.objects.exists()
    assert not EmailAddress.objects.exists()


def link_in(message, pattern: str) -> str:
    found = re.search(r"http://testserver(" + pattern + ")", message.body)
    assert found, message.body
    return found.group(1)


# --- Sign-up through the page ------------------------------------------------------------------


def test_the_page_offers_each_consent_unticked_with_its_policy_and_explains_service_purposes(client, profile_schema):
    page = client.get(SIGNUP).content.decode()
    labels = policy_labels()
    for slug in [*CONSENT_BASED, "email-marketing"]:
        checkbox = re.search(rf'<input type="checkbox" name="consents" value="{slug}"[^>]*>', page)
        assert checkbox, slug
        assert "checked" not in checkbox.group(0)
        assert f'href="/consent/policies/{slug}/{labels[slug]}/"' in page
        assert f'name="policy_{slug}" value="{labels[slug]}"' in page
    # Service purposes are explained, not asked.
    assert "Account management" in page
    assert 'value="account-management"' not in page
    assert "<legend>What you allow us to do</legend>" in page
    assert 'autocomplete="bday"' in page


def test_sign_up_records_the_ticked_consents_and_the_declared_age_and_country(client, profile_schema):
    response = client.post(SIGNUP, form_data(), HTTP_USER_AGENT="Mozilla/5.0 Firefox/130.0")
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response.url == "/accounts/confirm-email/"
    user = User.objects.get(email="new.person@example.com")
    assert user.check_password(PASSWORD)

    labels = policy_labels()
    grants = ConsentEvent.objects.filter(subject_id=user.pk, event_type=EventType.GRANT).select_related(
        "purpose", "policy_version"
    )
    assert {event.purpose.slug for event in grants} == {"personalization", "analytics"}
    for event in grants:
        assert event.method == Method.WEB_FORM
        assert event.policy_version.label == labels[event.purpose.slug]
        assert event.jurisdiction == "NL"
        assert event.ip_hash  # evidence, as a keyed hash
        assert event.ua_family == "Firefox"
        assert consent_is_granted(subject_id=user.pk, purpose=event.purpose.slug)
    # Each unticked purpose shown is recorded as refused, and not granted.
    refused = ConsentEvent.objects.filter(subject_id=user.pk, event_type=EventType.REFUSE)
    assert {event.purpose.slug for event in refused} == {
        "push-notifications",
        "advertising-partners",
        "loyalty-programme",
        "email-marketing",
    }
    assert all(event.method == Method.WEB_FORM for event in refused)
    for slug in ("push-notifications", "advertising-partners", "loyalty-programme", "email-marketing"):
        assert not consent_is_granted(subject_id=user.pk, purpose=slug)

    held = profile_read(
        subject_id=user.pk, fields=["birth_date", "country"], purpose=RIGHTS_PURPOSE, actor=Actor.person(user.pk)
    )
    assert held["birth_date"].value == datetime.date(1990, 6, 1)
    assert held["country"].value == "NL"
    assert held["birth_date"].source == Source.REGISTRATION

    # Mandatory verification: one mail, with the link.
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.person@example.com"]
    link_in(mail.outbox[0], r"/accounts/confirm-email/[^/\s]+/")


def test_a_double_opt_in_purpose_is_asked_by_mail_not_granted(client, profile_schema):
    response = client.post(SIGNUP, form_data(consents=["email-marketing"]))
    assert response.status_code == 302
    user = User.objects.get()
    event = ConsentEvent.objects.get(subject_id=user.pk, purpose__slug="email-marketing")
    assert event.event_type == EventType.REQUEST
    assert event.method == Method.DOUBLE_OPT_IN
    assert not consent_is_granted(subject_id=user.pk, purpose="email-marketing")
    state = {item.purpose: item.state for item in consent_states(subject_id=user.pk)}
    assert state["email-marketing"] == ConsentStatus.PENDING
    subjects = sorted(message.subject for message in mail.outbox)
    assert len(subjects) == 2  # the address verification, and the opt-in confirmation
    confirm = next(message for message in mail.outbox if "confirm: E-mail marketing" in message.subject)
    assert "/consent/confirm/" in confirm.body


def test_a_policy_published_while_the_form_was_open_is_caught(client, profile_schema):
    shown = policy_labels()["personalization"]
    page = client.get(SIGNUP)
    assert f'name="policy_personalization" value="{shown}"'.encode() in page.content
    policy_version_publish(purpose="personalization", label="2", text="A new text about recommendations.")

    response = client.post(SIGNUP, form_data(**{"policy_personalization": shown}))
    assert response.status_code == 200
    page = response.content.decode()
    assert "new version of the policy" in page
    assert "Personalization and recommendations" in page
    assert 'name="policy_personalization" value="2"' in page  # the next submission names the new one
    nothing_created()

    response = client.post(SIGNUP, form_data(**{"policy_personalization": "2"}))
    assert response.status_code == 302
    grant = ConsentEvent.objects.get(purpose__slug="personalization", event_type=EventType.GRANT)
    assert grant.policy_version.label == "2"


def test_under_the_age_of_digital_consent_a_ticked_purpose_is_refused_with_a_reason(client, profile_schema):
    response = client.post(SIGNUP, form_data(birth_date=years_ago(13)))
    assert response.status_code == 200
    page = response.content.decode()
    assert "a parent or" in page
    assert "guardian has to agree for you" in page
    assert 'id="consent-choices-error"' in page
    assert 'aria-describedby="consent-choices-help consent-choices-error"' in page
    nothing_created()

    # Without the consents the account can be made; nothing is granted.
    response = client.post(SIGNUP, form_data(birth_date=years_ago(13), consents=[]))
    assert response.status_code == 302
    user = User.objects.get()
    assert not ConsentEvent.objects.filter(subject_id=user.pk, event_type=EventType.GRANT).exists()
    assert ConsentEvent.objects.filter(subject_id=user.pk, event_type=EventType.REFUSE).count() == 6


def test_a_purpose_minimum_age_applies_where_the_country_age_is_lower(client, profile_schema):
    # Denmark's age of digital consent is 13; the default purposes ask 16 themselves.
    assert (
        client.post(SIGNUP, form_data(birth_date=years_ago(14), country="DK", consents=["analytics"])).status_code
        == 200
    )
    nothing_created()
    response = client.post(SIGNUP, form_data(birth_date=years_ago(17), country="DK", consents=["analytics"]))
    assert response.status_code == 302
    assert ConsentEvent.objects.get(event_type=EventType.GRANT).jurisdiction == "DK"


def test_a_duplicate_email_creates_nothing_and_tells_only_the_owner(client, profile_schema, alice):
    response = client.post(SIGNUP, form_data(email="Alice@Example.com"))
    # The page does not reveal who has an account (the same answer as a new sign-up) ...
    assert response.status_code == 302
    assert response.url == "/accounts/confirm-email/"
    assert User.objects.count() == 1
    assert not ConsentEvent.objects.exists()
    # ... the owner of the address is told by mail.
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@example.com"]
    assert "already" in mail.outbox[0].subject.lower()


@pytest.mark.parametrize("email", ["alice@example.com", "someone.new@example.com"])
@pytest.mark.usefixtures("profile_schema")
def test_sign_up_hashes_one_password_whether_or_not_the_email_has_an_account(client, alice, email, monkeypatch):
    """Timing must not tell whether an address has an account: the duplicate path, which creates
    nothing, hashes the submitted password as the new-account path does (the slow part)."""
    from django.contrib.auth.hashers import MD5PasswordHasher

    hashed = []
    encode = MD5PasswordHasher.encode
    monkeypatch.setattr(MD5PasswordHasher, "encode", lambda self, *a, **k: hashed.append(1) or encode(self, *a, **k))
    assert client.post(SIGNUP, form_data(email=email)).status_code == 302
    assert len(hashed) == 1


def test_a_weak_password_is_refused_with_a_friendly_error(client, profile_schema):
    response = client.post(SIGNUP, form_data(password1="password", password2="password"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "This password is too common." in page
    assert "This password is too short." in page
    assert 'aria-invalid="true"' in page
    assert 'id="id_password1_error"' in page
    nothing_created()


def test_a_password_like_the_email_is_refused(client, profile_schema):
    response = client.post(
        SIGNUP,
        form_data(email="marguerite.duras@example.com", password1="marguerite.duras", password2="marguerite.duras"),
    )
    assert response.status_code == 200
    assert "too similar to the email" in response.content.decode()
    nothing_created()


def test_missing_fields_are_named(client, profile_schema):
    response = client.post(SIGNUP, {})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="error-summary" role="alert"' in page
    assert 'href="#id_email"' in page
    assert 'href="#id_password1"' in page
    nothing_created()

    # To agree to anything, the age gate needs the date of birth and the country.
    response = client.post(SIGNUP, form_data(birth_date="", country=""))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Tell us your date of birth to allow what you ticked below." in page
    assert "Choose the country you live in to allow what you ticked below." in page
    assert 'href="#id_birth_date"' in page
    assert 'aria-describedby="id_birth_date_helptext id_birth_date_error"' in page
    nothing_created()


def test_someone_who_allows_nothing_need_not_give_a_birth_date(client, profile_schema):
    response = client.post(SIGNUP, form_data(birth_date="", country="", consents=[]))
    assert response.status_code == 302
    user = User.objects.get()
    assert not ConsentEvent.objects.filter(subject_id=user.pk, event_type=EventType.GRANT).exists()
    assert ConsentEvent.objects.filter(subject_id=user.pk, event_type=EventType.REFUSE).count() == 6
    held = profile_read(
        subject_id=user.pk, fields=["birth_date", "country"], purpose=RIGHTS_PURPOSE, actor=Actor.person(user.pk)
    )
    assert held == {}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("birth_date", "2999-01-01", "cannot be in the future"),
        ("birth_date", "1850-01-01", "check the year"),
        ("birth_date", "31/12/1990", "Enter a date like 2001-04-30."),
        ("country", "XX", "Select a valid choice."),
        ("consents", ["no-such-purpose"], "Select a valid choice."),
    ],
)
def test_bad_values_are_refused(client, profile_schema, field, value, message):
    response = client.post(SIGNUP, form_data(**{field: value}))
    assert response.status_code == 200
    assert message in response.content.decode()
    nothing_created()


def test_a_service_purpose_cannot_be_ticked(client, profile_schema):
    response = client.post(SIGNUP, form_data(consents=["account-management"]))
    assert response.status_code == 200
    nothing_created()


def test_a_sign_up_without_the_csrf_token_is_refused(profile_schema):
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(SIGNUP, form_data())
    assert response.status_code == 403
    nothing_created()


def test_global_privacy_control_keeps_sharing_off_at_sign_up(client, profile_schema):
    page = client.get(SIGNUP, HTTP_SEC_GPC="1").content.decode()
    checkbox = re.search(r'<input type="checkbox" name="consents" value="advertising-partners"[^>]*>', page)
    assert checkbox
    assert "disabled" in checkbox.group(0)

    response = client.post(SIGNUP, form_data(consents=["advertising-partners"]), HTTP_SEC_GPC="1")
    assert response.status_code == 200
    assert "Global Privacy Control" in response.content.decode()
    nothing_created()

    assert client.post(SIGNUP, form_data(), HTTP_SEC_GPC="1").status_code == 302
    refusal = ConsentEvent.objects.get(purpose__slug="advertising-partners")
    assert (refusal.event_type, refusal.method) == (EventType.REFUSE, Method.GPC)


def test_a_consent_failing_at_save_rolls_the_account_back(client, profile_schema, monkeypatch):
    """A policy published between the form's check and the write: nothing half-created."""
    from consent import services

    real = services.consent_grant

    def publish_then_grant(**kwargs):
        if kwargs["purpose"] == "analytics":
            policy_version_publish(purpose="analytics", label="2", text="Changed a moment ago.")
        return real(**kwargs)

    monkeypatch.setattr("accounts.signup.consent_grant", publish_then_grant)
    response = client.post(SIGNUP, form_data())
    assert response.status_code == 400
    assert "superseded" in response.content.decode()
    nothing_created()
    assert len(mail.outbox) == 0


# --- Verification, login, login by code, password reset ---------------------------------------


def test_the_email_must_be_verified_before_signing_in(client, profile_schema):
    client.post(SIGNUP, form_data())
    client.logout()
    response = client.post("/accounts/login/", {"login": "new.person@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == "/accounts/confirm-email/"
    assert "_auth_user_id" not in client.session

    confirm = link_in(mail.outbox[-1], r"/accounts/confirm-email/[^/\s]+/")
    assert client.get(confirm).status_code == 200
    assert client.post(confirm).status_code == 302
    assert EmailAddress.objects.get(email="new.person@example.com").verified

    response = client.post("/accounts/login/", {"login": "new.person@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == "/"
    assert client.session["_auth_user_id"] == str(User.objects.get().pk)


@pytest.fixture
def verified(alice):
    EmailAddress.objects.create(user=alice, email=alice.email, verified=True, primary=True)
    return alice


def test_the_login_page_offers_a_code_and_a_password_reset(client, db):
    page = client.get("/accounts/login/").content.decode()
    assert 'href="/accounts/login/code/"' in page
    assert 'href="/accounts/password/reset/"' in page
    assert '<label for="id_login">' in page


def test_login_by_code(client, verified):
    response = client.post("/accounts/login/code/", {"email": "alice@example.com"})
    assert response.status_code == 302
    assert response.url == "/accounts/login/code/confirm/"
    code = re.search(r"^\s*([A-Z0-9]{4}-[A-Z0-9]{4})\s*$", mail.outbox[-1].body, re.MULTILINE)
    assert code, mail.outbox[-1].body
    assert client.post("/accounts/login/code/confirm/", {"code": "WRONG1"}).status_code == 200
    response = client.post("/accounts/login/code/confirm/", {"code": code.group(1)})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(verified.pk)


def test_password_reset_by_mail(client, verified):
    response = client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert response.status_code == 302
    link = link_in(mail.outbox[-1], r"/accounts/password/reset/key/[^\s]+/")
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    new_password = "another sturdy passphrase 7"
    response = client.post(form_page.redirect_chain[-1][0], {"password1": new_password, "password2": new_password})
    assert response.status_code == 302
    verified.refresh_from_db()
    assert verified.check_password(new_password)


def test_a_password_reset_for_an_unknown_address_reveals_nothing(client, db):
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert response.url == "/accounts/password/reset/done/"


def test_failed_logins_are_rate_limited(client, verified):
    for _ in range(5):
        client.post("/accounts/login/", {"login": "alice@example.com", "password": "not it at all"})
    response = client.post("/accounts/login/", {"login": "alice@example.com", "password": "correct horse battery"})
    assert response.status_code == 200
    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_email_address_can_be_changed_after_verifying_the_new_one(client, verified):
    client.force_login(verified)
    response = client.post("/accounts/email/", {"action_add": "", "email": "alice.new@example.com"})
    assert response.status_code == 302
    assert verified.emailaddress_set.count() == 2  # the new one waits for its verification
    confirm = link_in(mail.outbox[-1], r"/accounts/confirm-email/[^/\s]+/")
    client.post(confirm)
    verified.refresh_from_db()
    assert verified.email == "alice.new@example.com"
    assert list(verified.emailaddress_set.values_list("email", flat=True)) == ["alice.new@example.com"]


def test_argon2_is_the_password_hasher():
    """tests/conftest.py swaps in a fast hasher; the project's own setting puts Argon2 first."""
    from django.contrib.auth.hashers import Argon2PasswordHasher

    import config.settings

    assert config.settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    hasher = Argon2PasswordHasher()
    encoded = hasher.encode("a sturdy passphrase 42", hasher.salt())
    assert encoded.startswith("argon2$argon2id$")
    assert hasher.verify("a sturdy passphrase 42", encoded)


# --- The headless API (an app or a single-page app) --------------------------------------------


def headless_payload(**overrides):
    labels = policy_labels()
    payload = {
        "email": "app.person@example.com",
        "password": PASSWORD,
        "birth_date": "1990-06-01",
        "country": "DE",
        "consents": ["personalization", "loyalty-programme"],
        "policy_personalization": labels["personalization"],
    }
    payload.update(overrides)
    return payload


def test_headless_sign_up_records_the_same_consents(client, profile_schema):
    response = client.post(HEADLESS_SIGNUP, headless_payload(), content_type="application/json")
    assert response.status_code == 401, response.json()  # signed up, waiting for the e-mail verification
    flows = {flow["id"]: flow for flow in response.json()["data"]["flows"]}
    assert flows["verify_email"]["is_pending"]
    user = User.objects.get(email="app.person@example.com")
    grants = ConsentEvent.objects.filter(subject_id=user.pk, event_type=EventType.GRANT).select_related("purpose")
    assert {event.purpose.slug for event in grants} == {"personalization", "loyalty-programme"}
    assert {event.method for event in grants} == {Method.WEB_FORM}
    assert {event.jurisdiction for event in grants} == {"DE"}
    # Refusals only for what the app said it showed (it sent no policy label for the others).
    assert not ConsentEvent.objects.filter(subject_id=user.pk, event_type=EventType.REFUSE).exists()
    held = profile_read(subject_id=user.pk, fields=["country"], purpose=RIGHTS_PURPOSE, actor=Actor.person(user.pk))
    assert held["country"].value == "DE"


def test_headless_sign_up_errors_name_their_field(client, profile_schema):
    response = client.post(
        HEADLESS_SIGNUP,
        headless_payload(birth_date=years_ago(12), policy_personalization="0"),
        content_type="application/json",
    )
    assert response.status_code == 400
    params = {error.get("param") for error in response.json()["errors"]}
    assert params == {"consents"}
    messages = " ".join(error["message"] for error in response.json()["errors"])
    assert "parent or guardian" in messages
    assert "new version of the policy" in messages
    nothing_created()

    response = client.post(
        HEADLESS_SIGNUP,
        {"email": "x@example.com", "password": PASSWORD, "consents": ["analytics"]},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert {error.get("param") for error in response.json()["errors"]} == {"birth_date", "country"}
    nothing_created()


def test_headless_browser_sign_up_needs_the_csrf_token(profile_schema):
    """The `browser` client rides on the session cookie, so it is CSRF-protected like the page."""
    browser = Client(enforce_csrf_checks=True)
    response = browser.post("/_allauth/browser/v1/auth/signup", headless_payload(), content_type="application/json")
    assert response.status_code == 403
    nothing_created()

    browser.get("/_allauth/browser/v1/config")  # sets the CSRF cookie, as a single-page app's first call does
    token = browser.cookies["csrftoken"].value
    response = browser.post(
        "/_allauth/browser/v1/auth/signup",
        headless_payload(),
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 401, response.content  # created; the address awaits verification
    assert ConsentEvent.objects.filter(event_type=EventType.GRANT).count() == 2


@pytest.mark.parametrize(
    "path", ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/", "/accounts/login/code/"]
)
def test_allauth_pages_use_the_portal_layout(client, profile_schema, path):
    page = client.get(path).content.decode()
    assert 'class="skip-link"' in page  # templates/base.html
    assert '<main id="main"' in page
    assert page.count("<h1>") == 1


@pytest.mark.parametrize("path", ["/accounts/email/", "/accounts/password/change/"])
def test_account_pages_use_the_portal_layout(client, verified, path):
    client.force_login(verified)
    page = client.get(path).content.decode()
    assert '<main id="main"' in page
    assert 'class="button' in page  # allauth's buttons, styled by templates/allauth/elements/


def test_an_invalid_new_email_address_is_tied_to_its_field(client, verified):
    client.force_login(verified)
    page = client.post("/accounts/email/", {"action_add": "", "email": "not an address"}).content.decode()
    assert 'aria-describedby="id_email_error"' in page
    assert 'aria-invalid="true"' in page
    assert '<ul class="errorlist" id="id_email_error"><li>Enter a valid email address.</li></ul>' in page
