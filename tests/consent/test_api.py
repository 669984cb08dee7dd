"""The person's consent API and receipts, through HTTP, with the personas alice and bob."""

import json
from pathlib import Path

import pytest
from jsonschema import Draft4Validator

from consent.models import ConsentEvent, Method
from consent.selectors import consent_is_granted
from tests.factories import PASSWORD
from vault.signing import jws_verify

# A copy of ../shared/standards/kantara-consent-receipt-v1.1.schema.json (Kantara Initiative,
# CR_v1_1), kept in the repository so the test runs wherever the repository is.
SCHEMA = json.loads((Path(__file__).parent / "kantara-consent-receipt-v1.1.schema.json").read_text())

pytestmark = pytest.mark.django_db


def grant(client, purpose, **body):
    return client.post(f"/api/v1/consent/{purpose}/grant/", body, content_type="application/json")


def withdraw(client, purpose, **body):
    return client.post(f"/api/v1/consent/{purpose}/withdraw/", body, content_type="application/json")


def test_anonymous_callers_get_401(client):
    assert client.get("/api/v1/consent/").status_code == 401
    assert grant(client, "analytics").status_code == 401


def test_the_list_shows_every_purpose_and_nothing_is_pre_granted(client, alice):
    client.force_login(alice)
    states = {item["purpose"]: item for item in client.get("/api/v1/consent/").json()}
    assert {"account-management", "email-marketing", "analytics", "advertising-partners"} <= set(states)
    assert states["analytics"]["state"] == "not_given"
    assert states["analytics"]["is_granted"] is False
    assert states["analytics"]["current_policy"]["sha256"]


def test_grant_and_withdraw_each_yield_a_signed_receipt_that_validates(client, alice):
    client.force_login(alice)
    granted = grant(client, "analytics")
    assert granted.status_code == 201, granted.json()
    assert consent_is_granted(subject_id=alice.id, purpose="analytics")
    withdrawn = withdraw(client, "analytics")
    assert withdrawn.status_code == 201
    assert not consent_is_granted(subject_id=alice.id, purpose="analytics")

    key_set = client.get("/.well-known/jwks.json").json()
    for event, consent_type in ((granted.json(), "EXPLICIT"), (withdrawn.json(), "WITHDRAWN")):
        body = client.get(f"/api/v1/consent/receipts/{event['id']}/").json()
        receipt = body["receipt"]
        Draft4Validator(SCHEMA).validate(receipt)
        assert jws_verify(body["jws"], key_set) == receipt
        assert receipt["consentReceiptID"] == event["id"]
        assert receipt["piiPrincipalId"] == str(alice.id)
        assert receipt["services"][0]["purposes"][0]["consentType"] == consent_type
        assert "alice" not in json.dumps(receipt), "the person is named by their opaque id only"
        policy = client.get(receipt["policyUrl"].removeprefix("http://127.0.0.1:8000"))
        assert policy.status_code == 200
        assert receipt["policySha256"].encode() in policy.content


def test_no_one_reads_another_persons_receipts_or_history(client, alice, bob):
    client.force_login(alice)
    event_id = grant(client, "analytics").json()["id"]
    client.force_login(bob)
    response = client.get(f"/api/v1/consent/receipts/{event_id}/")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"
    assert client.get("/api/v1/consent/history/").json()["results"] == []
    client.force_login(alice)
    assert [e["id"] for e in client.get("/api/v1/consent/history/").json()["results"]] == [event_id]


@pytest.mark.parametrize(
    ("purpose", "body", "status", "code", "param"),
    [
        ("no-such-purpose", {}, 404, "unknown_purpose", "purpose"),
        ("account-management", {}, 400, "not_consent_based", "purpose"),
        ("analytics", {"policy_version": "v0-never"}, 400, "unknown_policy_version", "policy_version"),
        ("email-marketing", {}, 400, "double_opt_in_required", "method"),
        ("analytics", {"policy_version": ["not", "text"]}, 400, "invalid", "policy_version"),
    ],
)
def test_bad_choices_are_clear_errors_and_write_nothing(client, alice, purpose, body, status, code, param):
    client.force_login(alice)
    response = grant(client, purpose, **body)
    assert response.status_code == status
    assert response.json()["errors"][0]["code"] == code
    assert response.json()["errors"][0]["param"] == param
    assert not ConsentEvent.objects.exists()


def test_global_privacy_control_is_honoured_once_and_blocks_granting_sharing(client, alice):
    client.force_login(alice)
    assert grant(client, "advertising-partners").status_code == 201

    client.get("/api/v1/consent/", headers={"Sec-GPC": "1"})
    client.get("/api/v1/consent/", headers={"Sec-GPC": "1"})
    gpc_events = ConsentEvent.objects.filter(subject_id=alice.id, method=Method.GPC)
    assert [(e.purpose.slug, e.event_type) for e in gpc_events] == [("advertising-partners", "withdraw")]
    assert not consent_is_granted(subject_id=alice.id, purpose="advertising-partners")

    response = client.post(
        "/api/v1/consent/advertising-partners/grant/", {}, content_type="application/json", headers={"Sec-GPC": "1"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "gpc_opt_out"
    assert not consent_is_granted(subject_id=alice.id, purpose="advertising-partners")
    other = client.post(
        "/api/v1/consent/analytics/grant/", {}, content_type="application/json", headers={"Sec-GPC": "1"}
    )
    assert other.status_code == 201, "GPC leaves purposes that do not sell or share alone"


def test_gpc_declaration(client):
    response = client.get("/.well-known/gpc.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["gpc"] is True
    assert len(body["lastUpdate"]) == 10


def test_apps_use_the_session_token_from_allauths_headless_login(client, alice):
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(user=alice, email=alice.email, verified=True, primary=True)
    login = client.post(
        "/_allauth/app/v1/auth/login",
        {"email": "alice@example.com", "password": PASSWORD},
        content_type="application/json",
    )
    assert login.status_code == 200, login.content
    token = login.json()["meta"]["session_token"]
    app = type(client)()  # no cookies: only the token
    response = app.get("/api/v1/consent/", headers={"X-Session-Token": token})
    assert response.status_code == 200
    granted = app.post(
        "/api/v1/consent/analytics/grant/", {}, content_type="application/json", headers={"X-Session-Token": token}
    )
    assert granted.status_code == 201
    assert consent_is_granted(subject_id=alice.id, purpose="analytics")
    assert app.get("/api/v1/consent/", headers={"X-Session-Token": "forged-token"}).status_code == 401


def test_gpc_covers_legitimate_interest_sharing_skips_unpublished_purposes_and_honours_an_override(client, alice):
    from consent.models import LegalBasis, Purpose
    from consent.services import consent_grant, policy_version_publish

    common = {"description": "d", "dpv_term": "dpv:SellDataToThirdParties", "data_use": "marketing.advertising"}
    Purpose.objects.create(
        slug="data-sale-li", name="Sale", legal_basis=LegalBasis.LEGITIMATE_INTEREST, is_sale_or_sharing=True, **common
    )
    policy_version_publish(purpose="data-sale-li", label="1", text="We sell.")
    Purpose.objects.create(
        slug="unpublished-sharing", name="Later", legal_basis=LegalBasis.CONSENT, is_sale_or_sharing=True, **common
    )
    client.force_login(alice)
    assert client.get("/", headers={"Sec-GPC": "1"}).status_code == 200, "a purpose without a text breaks nothing"
    assert not consent_is_granted(subject_id=alice.id, purpose="data-sale-li"), "GPC objects to the sale"

    # The person overrides GPC for one purpose in the portal: later GPC requests leave it alone.
    consent_grant(
        subject_id=alice.id, purpose="advertising-partners", method=Method.WEB_FORM, gpc=True, gpc_override=True
    )
    client.get("/api/v1/consent/", headers={"Sec-GPC": "1"})
    assert consent_is_granted(subject_id=alice.id, purpose="advertising-partners")
