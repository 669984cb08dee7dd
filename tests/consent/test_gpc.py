"""Global Privacy Control (consent/gpc.py): the same signal, honoured the same way whether the
person is signed in by a browser cookie or by an app's session token; and only `1` is a signal."""

import pytest
from allauth.account.models import EmailAddress
from django.test import Client

from consent.models import ConsentEvent, Method
from consent.selectors import consent_is_granted
from tests.factories import PASSWORD, grant

pytestmark = pytest.mark.django_db

SHARING = "advertising-partners"  # a consent-based purpose that shares data (migration 0002)


def app_token(person) -> str:
    """Sign in as an app does (allauth headless): a session token, no cookie."""
    EmailAddress.objects.create(user=person, email=person.email, verified=True, primary=True)
    login = Client().post(
        "/_allauth/app/v1/auth/login", {"email": person.email, "password": PASSWORD}, content_type="application/json"
    )
    assert login.status_code == 200, login.content
    return login.json()["meta"]["session_token"]


def gpc_events(person):
    return [
        (e.purpose.slug, e.event_type) for e in ConsentEvent.objects.filter(subject_id=person.pk, method=Method.GPC)
    ]


def test_an_app_client_sending_gpc_has_its_sharing_withdrawn_like_a_browser(alice, bob):
    grant(alice, SHARING)
    grant(bob, SHARING)
    app = Client()  # no cookies: only the token
    token = app_token(alice)
    browser = Client()
    browser.force_login(bob)

    listed = app.get("/api/v1/consent/", headers={"X-Session-Token": token, "Sec-GPC": "1"})
    browser.get("/api/v1/consent/", headers={"Sec-GPC": "1"})

    assert listed.status_code == 200
    assert gpc_events(alice) == gpc_events(bob) == [(SHARING, "withdraw")]
    assert not consent_is_granted(subject_id=alice.id, purpose=SHARING)
    shown = {item["purpose"]: item["state"] for item in listed.json()}
    assert shown[SHARING] == "withdrawn", "withdrawn before the view ran, as for a browser"

    refused = app.post(
        f"/api/v1/consent/{SHARING}/grant/",
        {},
        content_type="application/json",
        headers={"X-Session-Token": token, "Sec-GPC": "1"},
    )
    assert refused.json()["errors"][0]["code"] == "gpc_opt_out"


def test_an_app_client_sending_gpc_to_allauths_own_endpoints_is_honoured_too(alice):
    grant(alice, SHARING)
    token = app_token(alice)
    response = Client().get("/_allauth/app/v1/auth/session", headers={"X-Session-Token": token, "Sec-GPC": "1"})
    assert response.status_code == 200
    assert gpc_events(alice) == [(SHARING, "withdraw")]


def test_a_token_that_does_not_authenticate_names_no_one(alice):
    grant(alice, SHARING)
    response = Client().get("/api/v1/consent/", headers={"X-Session-Token": "forged-token", "Sec-GPC": "1"})
    assert response.status_code == 401
    assert not ConsentEvent.objects.filter(method=Method.GPC).exists()


@pytest.mark.parametrize("value", ["0", "yes", "true", "", "1, 1", "\u00e9"])
@pytest.mark.parametrize("url", ["/healthz", "/", "/consent/", "/api/v1/consent/", "/.well-known/gpc.json"])
def test_any_other_value_is_no_signal_and_no_error(client, alice, url, value):
    grant(alice, SHARING)
    client.force_login(alice)
    response = client.get(url, headers={"Sec-GPC": value})
    assert response.status_code == 200
    assert consent_is_granted(subject_id=alice.id, purpose=SHARING), "nothing withdrawn"
    assert not ConsentEvent.objects.filter(method=Method.GPC).exists()


def test_any_other_value_does_not_block_granting_sharing(client, alice):
    client.force_login(alice)
    response = client.post(
        f"/api/v1/consent/{SHARING}/grant/", {}, content_type="application/json", headers={"Sec-GPC": "0"}
    )
    assert response.status_code == 201


def test_the_value_may_come_with_whitespace_around_it(client, alice):
    grant(alice, SHARING)
    client.force_login(alice)
    client.get("/api/v1/consent/", headers={"Sec-GPC": " 1 "})
    assert gpc_events(alice) == [(SHARING, "withdraw")]
