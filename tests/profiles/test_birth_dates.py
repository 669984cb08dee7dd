"""One rule for a date of birth on every surface that stores one (consent.services.birth_date_check):
not in the future, not before 1900. The profile API, the portal's profile and consent pages and
sign-up refuse the same dates; the consent API's are in tests/consent/test_age_gate.py."""

import datetime

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from profiles.gate import RIGHTS_PURPOSE, Actor, profile_read
from profiles.models import ProfileValue
from tests.factories import fill

pytestmark = pytest.mark.usefixtures("schema")

IMPOSSIBLE = ["2099-01-01", "0001-01-01", "1899-12-31", "tomorrow"]


def as_text(born: str) -> str:
    return (timezone.localdate() + datetime.timedelta(days=1)).isoformat() if born == "tomorrow" else born


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def held_birth_dates(person) -> int:
    return ProfileValue.objects.filter(subject_id=person.pk, definition__key="birth_date").count()


@pytest.mark.parametrize("born", IMPOSSIBLE)
def test_the_profile_api_refuses_impossible_birth_dates(alice, born):
    response = signed_in(alice).patch(
        "/api/v1/me/profile/", {"values": {"birth_date": as_text(born)}}, content_type="application/json"
    )
    assert response.status_code == 400
    assert [(e["code"], e["param"]) for e in response.json()["errors"]] == [("invalid_value", "birth_date")]
    assert held_birth_dates(alice) == 0


@pytest.mark.parametrize("born", ["1900-01-01", "1990-06-01", "today"])
def test_the_profile_api_takes_possible_ones(alice, born):
    value = timezone.localdate().isoformat() if born == "today" else born
    response = signed_in(alice).patch(
        "/api/v1/me/profile/", {"values": {"birth_date": value}}, content_type="application/json"
    )
    assert response.status_code == 200, response.json()
    assert held_birth_dates(alice) == 1


@pytest.mark.parametrize("born", IMPOSSIBLE)
def test_the_portal_profile_page_refuses_them(alice, born):
    response = signed_in(alice).post("/profile/", {"birth_date": as_text(born)})
    assert response.status_code == 400
    assert 'id="err-birth_date"' in response.content.decode()
    assert held_birth_dates(alice) == 0


@pytest.mark.parametrize("born", IMPOSSIBLE)
def test_the_portal_consent_page_refuses_them(alice, born):
    page = signed_in(alice).post("/consent/", {"action": "birth_date", "birth_date": as_text(born)}, follow=True)
    assert "your date of birth is saved" not in page.content.decode()
    assert held_birth_dates(alice) == 0


def test_a_birth_date_already_stored_is_not_replaced_by_an_impossible_one(alice):
    fill(alice, birth_date="1990-06-01")
    response = signed_in(alice).patch(
        "/api/v1/me/profile/", {"values": {"birth_date": "0001-01-01"}}, content_type="application/json"
    )
    assert response.status_code == 400
    held = profile_read(
        subject_id=alice.pk, fields=["birth_date"], purpose=RIGHTS_PURPOSE, actor=Actor.person(alice.pk)
    )
    assert held["birth_date"].value == datetime.date(1990, 6, 1)


@pytest.mark.parametrize(("born", "message"), [("0001-01-01", "check the year"), ("1899-12-31", "check the year")])
def test_sign_up_refuses_them_too(client, born, message):
    response = client.post(
        "/accounts/signup/",
        {
            "email": "new.person@example.com",
            "password1": "a sturdy passphrase 42",
            "password2": "a sturdy passphrase 42",
            "birth_date": born,
            "country": "NL",
        },
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not User.objects.exists()
