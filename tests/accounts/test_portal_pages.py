"""The portal's pages: each is the signed-in person's own, shows their data and no one else's;
the profile is rectified through the gate; staff need MFA for the admin and the staff API."""

import re

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.test import Client
from rest_framework.test import APIClient

from accounts.mfa import UNSPECIFIED_IP
from consent.models import Method
from consent.services import consent_grant, user_agent_summary
from profiles.gate import RIGHTS_PURPOSE, Actor, profile_read
from profiles.models import ProfileValue, Source
from tests.factories import PASSWORD, UserFactory, add_totp, fill, give_birth_date
from vault.audit.selectors import audit_entries_about
from vault.models import AuditEntry

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("profile_schema")]

PAGES = ["/", "/profile/", "/security/", "/privacy/", "/privacy/access-log/", "/consent/"]
SHOP = Actor.partner("shop-eu-1")


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("url", [page for page in PAGES if page != "/"])
def test_every_page_needs_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_home_page_invites_strangers_to_sign_up(client):
    page = client.get("/").content.decode()
    assert "/accounts/signup/" in page
    assert "Sign out" not in page


@pytest.mark.parametrize("url", PAGES)
def test_every_page_has_landmarks_a_skip_link_and_a_sign_out_button(alice, url):
    page = signed_in(alice).get(url).content.decode()
    assert 'href="#main"' in page and '<main id="main"' in page
    assert '<nav class="site-nav" aria-label="Main">' in page
    assert 'action="/accounts/logout/"' in page and 'method="post"' in page
    assert "style=" not in page and "<script>" not in page, "the CSP allows neither"


def test_the_dashboard_summarises_the_persons_own_data(alice, bob):
    fill(alice, given_name="Ada", shoe_size="42")
    fill(bob, given_name="Bob", city="Utrecht", shoe_size="44")
    consent_grant(subject_id=alice.pk, purpose="personalization", method=Method.WEB_FORM, age=30)
    page = signed_in(alice).get("/").content.decode()
    assert "We hold 2 values about you" in page
    assert "Personalization" in page or "personalization" in page.lower()
    assert "Utrecht" not in page and "Bob" not in page


def test_the_profile_shows_values_with_their_provenance_and_only_the_owners(alice, bob):
    fill(alice, given_name="Ada", shoe_size="42")
    fill(bob, given_name="Robert", city="Utrecht")
    page = signed_in(alice).get("/profile/").content.decode()
    assert 'value="Ada"' in page
    assert "The person, in the portal or app" in page, "where it came from"
    assert "Kept until" in page, "when it expires"
    assert 'for="field-given_name"' in page, "labelled controls"
    assert "Robert" not in page and "Utrecht" not in page


def test_the_person_rectifies_and_removes_values_through_the_gate(alice):
    fill(alice, given_name="Ada", city="Delft")
    client = signed_in(alice)
    form = {"given_name": "Ada Lovelace", "city": "", "shoe_size": "42"}
    response = client.post("/profile/", form, follow=True)
    assert response.status_code == 200
    assert "Saved" in response.content.decode()
    own = profile_read(
        subject_id=alice.pk,
        fields=["given_name", "city", "shoe_size"],
        purpose=RIGHTS_PURPOSE,
        actor=Actor.person(alice.pk),
    )
    assert own["given_name"].value == "Ada Lovelace"
    assert own["given_name"].source == Source.SELF_SERVICE
    assert "city" not in own
    assert own["shoe_size"].value == "42"
    write = AuditEntry.objects.filter(action="profile.write").order_by("-seq").first()
    assert write.actor_type == "person" and write.purpose == RIGHTS_PURPOSE
    assert sorted(write.fields) == ["city", "given_name", "shoe_size"]


def test_a_bad_value_is_shown_at_its_field_and_nothing_is_written(alice):
    fill(alice, given_name="Ada")
    before = set(ProfileValue.objects.filter(subject_id=alice.pk).values_list("id", flat=True))
    response = signed_in(alice).post(
        "/profile/", {"given_name": "Augusta Ada", "birth_date": "not a date", "social_profile_url": "ftp://x"}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was saved" in page
    assert 'id="err-birth_date"' in page and 'id="err-social_profile_url"' in page
    assert 'id="err-given_name"' not in page
    assert 'aria-invalid="true"' in page
    assert 'value="Augusta Ada"' in page, "the form keeps what was typed"
    assert set(ProfileValue.objects.filter(subject_id=alice.pk).values_list("id", flat=True)) == before
    own = profile_read(subject_id=alice.pk, fields=["given_name"], purpose=RIGHTS_PURPOSE, actor=Actor.person(alice.pk))
    assert own["given_name"].value == "Ada"


def test_a_field_the_person_may_not_edit_is_not_written(alice):
    """Only fields the page offers are read from the form: a crafted field is ignored."""
    signed_in(alice).post("/profile/", {"loyalty_tier": "gold"})
    assert not ProfileValue.objects.filter(subject_id=alice.pk).exists()


def test_who_accessed_lists_a_partner_read_and_nothing_about_bob(alice, bob):
    fill(alice, shoe_size="42")
    fill(bob, shoe_size="44")
    for person in (alice, bob):
        consent_grant(subject_id=person.pk, purpose="personalization", method=Method.WEB_FORM, age=30)
    profile_read(subject_id=alice.pk, fields=["shoe_size"], purpose="personalization", actor=SHOP)
    profile_read(subject_id=bob.pk, fields=["shoe_size"], purpose="personalization", actor=Actor.partner("bobs-shop"))
    profile_read(subject_id=bob.pk, fields=["shoe_size"], purpose="personalization", actor=Actor.staff(alice.pk))

    page = signed_in(alice).get("/privacy/access-log/").content.decode()
    assert "Partner" in page and "shop-eu-1" in page
    assert "Shoe size (EU)" in page, "fields by their label"
    assert "bobs-shop" not in page
    assert "Staff member" not in page
    assert str(bob.pk) not in page
    for pseudonym in AuditEntry.objects.exclude(subject_pseudonym=None).values_list("subject_pseudonym", flat=True):
        assert str(pseudonym) not in page and pseudonym.hex not in page, "no pseudonym is shown"


def test_who_accessed_names_no_staff_member_and_hides_own_activity_unless_asked(alice, staff):
    fill(alice, given_name="Ada")
    profile_read(subject_id=alice.pk, fields=["given_name"], purpose=RIGHTS_PURPOSE, actor=Actor.staff(staff.pk))
    client = signed_in(alice)
    page = client.get("/privacy/access-log/").content.decode()
    assert "Staff member" in page and str(staff.pk) not in page
    assert "Changed profile values" not in page, "her own edit is hidden by default"
    assert "Changed profile values" in client.get("/privacy/access-log/?own=1").content.decode()


def test_who_accessed_is_paginated(alice, django_assert_max_num_queries):
    fill(alice, shoe_size="42")
    consent_grant(subject_id=alice.pk, purpose="personalization", method=Method.WEB_FORM, age=30)
    for _ in range(30):
        profile_read(subject_id=alice.pk, fields=["shoe_size"], purpose="personalization", actor=SHOP)
    first = audit_entries_about(subject_id=alice.pk, page=1, exclude_own=True)
    partner_reads = [e for e in first.object_list if e.actor_name == "shop-eu-1"]
    assert first.paginator.count >= 30 and len(partner_reads) == 25 and first.has_next()
    client = signed_in(alice)
    with django_assert_max_num_queries(15):
        page = client.get("/privacy/access-log/?page=2").content.decode()
    assert "Page 2 of 2" in page
    assert client.get("/privacy/access-log/?page=nonsense").status_code == 200


def test_the_security_page_links_to_mfa_and_lists_sessions(alice):
    page = signed_in(alice).get("/security/").content.decode()
    assert "/accounts/2fa/" in page
    assert "/accounts/2fa/webauthn/add/" in page


# --- Sessions -----------------------------------------------------------------------------------
def sign_in_for_real(user, user_agent):
    """Through allauth's login form, which records the session (force_login does not)."""
    client = Client(HTTP_USER_AGENT=user_agent)
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return client


PHONE = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"
LAPTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def test_sessions_are_listed_without_ip_and_the_others_are_signed_out(alice, bob):
    for user in (alice, bob):
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    phone = sign_in_for_real(alice, PHONE)
    laptop = sign_in_for_real(alice, LAPTOP)
    sign_in_for_real(bob, LAPTOP)

    stored = UserSession.objects.filter(user=alice)
    assert sorted(stored.values_list("user_agent", flat=True)) == ["Chrome on Android", "Firefox on Linux"]
    assert set(UserSession.objects.values_list("ip", flat=True)) == {UNSPECIFIED_IP}, "no address at rest"

    page = laptop.get("/security/").content.decode()
    assert "Chrome on Android" in page and "Firefox on Linux" in page
    assert "(this device)" in page
    assert "Sign out the 1 other session" in page

    response = laptop.post("/security/sessions/end-others/", follow=True)
    assert "Signed out everywhere else" in response.content.decode()
    assert phone.get("/profile/").status_code == 302, "the phone is signed out"
    assert laptop.get("/profile/").status_code == 200, "this device stays signed in"
    assert UserSession.objects.filter(user=bob).count() == 1, "bob's session is not touched"


def test_ending_sessions_needs_a_post(alice):
    assert signed_in(alice).get("/security/sessions/end-others/").status_code == 405


def test_device_summary_keeps_no_versions():
    assert user_agent_summary(PHONE).device == "Chrome on Android"
    assert user_agent_summary("curl/8.5.0").device == "Unknown device"


# --- Mandatory MFA for staff ------------------------------------------------------------------
STAFF_API = "/api/v1/profile-fields/"


def test_staff_without_mfa_are_sent_to_set_it_up(staff_mfa, db):
    staff_mfa.auto = False
    member = UserFactory(staff=True)
    client = signed_in(member)
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain == [("/security/", 302)]
    assert "Staff accounts need two-factor authentication" in response.content.decode()
    assert "/accounts/2fa/totp/activate/" in response.content.decode()
    assert client.get("/admin/consent/consentevent/").status_code == 302
    api = client.get(STAFF_API)
    assert api.status_code == 403
    assert api.json()["errors"][0]["code"] == "mfa_required"
    assert client.get("/security/").status_code == 200, "their own portal still works"


def test_staff_with_an_authenticator_must_still_use_it_in_this_session(staff_mfa, db):
    """A session that signed in with the password only (the admin's own login form, say)."""
    staff_mfa.auto = False
    member = UserFactory(staff=True)
    totp = add_totp(member)
    client = signed_in(member)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/reauthenticate/?next=%2Fadmin%2F"
    assert client.get(STAFF_API).status_code == 403

    # Confirming with the code in this session opens the admin.
    response = client.post("/accounts/2fa/reauthenticate/?next=/admin/", {"code": current_code(totp)})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get(STAFF_API).status_code == 200


def current_code(totp):
    from allauth.mfa.utils import decrypt

    from tests.factories import totp_code

    return totp_code(decrypt(totp.data["secret"]))


def test_staff_who_signed_in_with_mfa_get_in(staff):
    assert Authenticator.objects.filter(user=staff, type=Authenticator.Type.TOTP).exists()
    client = signed_in(staff)
    assert client.get("/admin/").status_code == 200
    assert client.get(STAFF_API).status_code == 200


def test_the_admin_login_form_is_replaced_by_allauths(client):
    response = client.get("/admin/login/?next=/admin/consent/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fadmin%2Fconsent%2F"


def test_a_real_sign_in_with_totp_opens_the_admin(staff_mfa, db):
    """The whole way: password, then the TOTP code at allauth's MFA step, then the admin."""
    staff_mfa.auto = False
    member = UserFactory(staff=True)
    EmailAddress.objects.create(user=member, email=member.email, verified=True, primary=True)
    totp = add_totp(member)
    client = Client()
    response = client.post("/accounts/login/", {"login": member.email, "password": PASSWORD})
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert client.get("/admin/").status_code == 302, "not signed in before the second factor"
    response = client.post("/accounts/2fa/authenticate/", {"code": current_code(totp)})
    assert response.status_code == 302, response.content[:300]
    assert client.get("/admin/").status_code == 200
    assert client.get(STAFF_API).status_code == 200


def test_people_who_are_not_staff_need_no_mfa_for_the_api(alice):
    api = APIClient()
    api.force_login(alice)
    assert api.get("/api/v1/me/").status_code == 200


def app_login(email):
    """allauth headless's app login: a session token, and the flows still pending."""
    response = Client().post(
        "/_allauth/app/v1/auth/login",
        {"email": email, "password": PASSWORD},
        content_type="application/json",
    )
    return response, response.json()["meta"]["session_token"]


def test_app_session_tokens_reach_the_staff_api_only_after_the_second_factor(staff_mfa, db):
    staff_mfa.auto = False
    with_totp = UserFactory(staff=True)
    without = UserFactory(staff=True)
    for member in (with_totp, without):
        EmailAddress.objects.create(user=member, email=member.email, verified=True, primary=True)
    totp = add_totp(with_totp)
    app = Client()

    response, token = app_login(without.email)
    assert response.status_code == 200, "signed in: staff without MFA may use their own portal"
    refused = app.get(STAFF_API, headers={"X-Session-Token": token})
    assert refused.status_code == 403 and refused.json()["errors"][0]["code"] == "mfa_required"

    response, token = app_login(with_totp.email)
    assert response.status_code == 401, "the code is still to come"
    assert app.get(STAFF_API, headers={"X-Session-Token": token}).status_code == 401
    confirmed = app.post(
        "/_allauth/app/v1/auth/2fa/authenticate",
        {"code": current_code(totp)},
        content_type="application/json",
        headers={"X-Session-Token": token},
    )
    assert confirmed.status_code == 200, confirmed.content
    token = confirmed.json()["meta"].get("session_token", token)
    assert app.get(STAFF_API, headers={"X-Session-Token": token}).status_code == 200


def test_who_accessed_speaks_in_words_with_time_zones(alice):
    client = signed_in(alice)
    give_birth_date(alice)
    client.post("/consent/", {"purpose": "personalization", "action": "grant"})
    page = client.get("/privacy/access-log/?own=1").content.decode()
    assert "consent.grant" not in page and "age-gate" not in page, "no raw codes or job names"
    assert "Recorded your consent" in page
    assert "Age check before a consent" in page
    assert "Checking you are old enough to consent on your own" in page, "the check says why it read"
    assert re.search(r"\d{2}:\d{2} UTC", page), "times name their zone"


def test_opening_the_consent_page_reads_nothing(alice):
    give_birth_date(alice)
    client = signed_in(alice)
    before = AuditEntry.objects.count()
    assert client.get("/consent/").status_code == 200
    assert AuditEntry.objects.count() == before, "checking whether a birth date is held decrypts nothing"
