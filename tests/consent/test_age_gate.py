"""The age gate against a birth date sent with a choice: the profile's birth date decides, a
different one is refused (never silently preferred), and impossible dates are refused."""

import datetime

import pytest
from django.core import mail
from django.utils import timezone

from consent.models import ConsentEvent
from profiles.gate import RIGHTS_PURPOSE, Actor, profile_read
from tests.factories import UserFactory, give_birth_date

pytestmark = pytest.mark.django_db

CHOICES = [
    ("/api/v1/consent/analytics/grant/", {}),
    ("/api/v1/consent/email-marketing/request/", {}),
    ("/api/v1/consent/personalization/parental-request/", {"parent_email": "parent@example.net"}),
]


def post(client, url, body):
    return client.post(url, body, content_type="application/json")


def stored_birth_date(person) -> datetime.date:
    held = profile_read(
        subject_id=person.pk, fields=["birth_date"], purpose=RIGHTS_PURPOSE, actor=Actor.person(person.pk)
    )
    return held["birth_date"].value


@pytest.fixture
def child(profile_schema):
    return give_birth_date(UserFactory(email="child@example.com"), "2015-03-01")


@pytest.fixture
def stranger(profile_schema):
    """Someone whose profile holds no birth date."""
    return UserFactory(email="stranger@example.com")


@pytest.mark.parametrize(("url", "body"), CHOICES)
def test_a_declared_birth_date_cannot_outrank_the_stored_one(client, child, url, body):
    client.force_login(child)
    response = post(client, url, {**body, "birth_date": "1980-01-01"})
    assert response.status_code == 409, response.json()
    assert response.json()["errors"] == [
        {"code": "birth_date_mismatch", "message": response.json()["errors"][0]["message"], "param": "birth_date"}
    ]
    assert "1980" not in response.content.decode(), "the message does not echo the date"
    assert not ConsentEvent.objects.exists()
    assert not mail.outbox
    assert stored_birth_date(child) == datetime.date(2015, 3, 1), "the profile is unchanged"


def test_the_same_birth_date_as_the_stored_one_is_fine_and_decides_nothing_new(client, child, alice):
    client.force_login(child)
    same = post(client, "/api/v1/consent/analytics/grant/", {"birth_date": "2015-03-01"})
    assert same.json()["errors"][0]["code"] == "parental_consent_required"
    client.force_login(alice)  # an adult by the fixture's profile (1990-06-01)
    assert post(client, "/api/v1/consent/analytics/grant/", {"birth_date": "1990-06-01"}).status_code == 201


def test_a_correction_goes_through_the_profile_where_it_is_validated_and_audited(client, child):
    """The person may be right and the profile wrong: they rectify the profile (an audited write
    of the value, kept with its history), and then the age gate reads the corrected date."""
    client.force_login(child)
    rectified = client.patch(
        "/api/v1/me/profile/", {"values": {"birth_date": "1980-01-01"}}, content_type="application/json"
    )
    assert rectified.status_code == 200
    assert post(client, "/api/v1/consent/analytics/grant/", {"birth_date": "1980-01-01"}).status_code == 201


def future() -> str:
    return (timezone.localdate() + datetime.timedelta(days=1)).isoformat()


@pytest.mark.parametrize("born", ["2099-01-01", "0001-01-01", "1899-12-31", "tomorrow"])
@pytest.mark.parametrize(("url", "body"), CHOICES)
def test_impossible_birth_dates_are_refused(client, stranger, url, body, born):
    client.force_login(stranger)
    response = post(client, url, {**body, "birth_date": future() if born == "tomorrow" else born})
    assert response.status_code == 400
    assert [(e["code"], e["param"]) for e in response.json()["errors"]] == [("invalid_birth_date", "birth_date")]
    assert not ConsentEvent.objects.exists()
    assert not mail.outbox


def test_the_oldest_and_the_youngest_possible_birth_dates_pass(client, stranger):
    client.force_login(stranger)
    assert post(client, "/api/v1/consent/analytics/grant/", {"birth_date": "1900-01-01"}).status_code == 201
    today = timezone.localdate().isoformat()
    response = post(client, "/api/v1/consent/analytics/grant/", {"birth_date": today})
    assert response.json()["errors"][0]["code"] == "parental_consent_required", "born today: valid, and a child"


def test_an_impossible_birth_date_is_refused_where_the_age_gate_has_nothing_to_decide(client, alice, fraud_checks):
    """A legitimate interest needs no age; a date sent with it is checked all the same."""
    client.force_login(alice)
    response = post(client, "/api/v1/consent/fraud-checks/grant/", {"birth_date": "0001-01-01"})
    assert response.json()["errors"][0]["code"] == "invalid_birth_date"
    assert post(client, "/api/v1/consent/fraud-checks/grant/", {"birth_date": "1990-06-01"}).status_code == 201
