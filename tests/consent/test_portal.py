"""The consent page of the portal: the same rules as the API, for people in a browser."""

import pytest

from consent.models import ConsentEvent, Method
from consent.selectors import consent_is_granted
from consent.services import policy_version_publish

pytestmark = pytest.mark.django_db


def choose(client, purpose, action, **extra):
    return client.post("/consent/", {"purpose": purpose, "action": action, **extra}, follow=True)


def test_the_page_needs_a_login(client):
    response = client.get("/consent/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_a_person_grants_withdraws_and_downloads_a_receipt(client, alice, bob):
    client.force_login(alice)
    page = client.get("/consent/")
    assert page.status_code == 200
    assert b'id="purpose-personalization"' in page.content
    assert b"Not given" in page.content
    assert b"Thank you" in choose(client, "personalization", "grant").content
    assert consent_is_granted(subject_id=alice.id, purpose="personalization")
    assert b"Withdrawn" in choose(client, "personalization", "withdraw").content
    assert not consent_is_granted(subject_id=alice.id, purpose="personalization")

    event = ConsentEvent.objects.filter(subject_id=alice.id).latest("seq")
    download = client.get(f"/consent/receipts/{event.id}.jws")
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment;")
    assert download.content.count(b".") == 2, "a compact JWS"
    client.force_login(bob)
    assert client.get(f"/consent/receipts/{event.id}.jws").status_code == 404, "not someone else's"


def test_errors_are_shown_not_crashed(client, alice):
    client.force_login(alice)
    response = choose(client, "account-management", "grant")
    assert response.status_code == 200
    assert b"no choice to record" in response.content
    assert not ConsentEvent.objects.exists()


def test_a_material_change_shows_needs_renewed_consent(client, alice):
    client.force_login(alice)
    choose(client, "analytics", "grant")
    policy_version_publish(purpose="analytics", label="2", text="A new analytics policy.", is_material=True)
    assert b"Needs renewed consent" in client.get("/consent/").content
    choose(client, "analytics", "grant")
    assert consent_is_granted(subject_id=alice.id, purpose="analytics")


def test_with_gpc_sharing_needs_the_explicit_override(client, alice):
    client.force_login(alice)
    gpc = {"headers": {"Sec-GPC": "1"}}
    page = client.get("/consent/", **gpc)
    assert b"Global Privacy Control" in page.content
    refused = client.post("/consent/", {"purpose": "advertising-partners", "action": "grant"}, follow=True, **gpc)
    assert b"Global Privacy Control" in refused.content
    assert not consent_is_granted(subject_id=alice.id, purpose="advertising-partners")
    client.post(
        "/consent/", {"purpose": "advertising-partners", "action": "grant", "gpc_override": "yes"}, follow=True, **gpc
    )
    assert consent_is_granted(subject_id=alice.id, purpose="advertising-partners")
    client.get("/consent/", **gpc)
    assert consent_is_granted(subject_id=alice.id, purpose="advertising-partners"), "the override stands"
    grant = ConsentEvent.objects.filter(subject_id=alice.id, event_type="grant").get()
    assert grant.method == Method.WEB_FORM


def test_double_opt_in_from_the_portal_sends_the_mail(client, alice, mailoutbox):
    client.force_login(alice)
    response = choose(client, "email-marketing", "request")
    assert b"We sent you an e-mail" in response.content
    assert len(mailoutbox) == 1
    assert b"Send the confirmation e-mail again" in client.get("/consent/").content


def test_a_minor_can_ask_a_parent_from_the_portal(client, django_user_model, mailoutbox):
    from tests.factories import give_birth_date

    kid = django_user_model.objects.create_user(email="kid@example.com", password="irrelevant-here")
    give_birth_date(kid, birth_date="2014-03-01")
    client.force_login(kid)
    refused = choose(client, "personalization", "grant")
    assert refused.redirect_chain[-1][0].startswith("/consent/?ask_parent=personalization")
    page = refused.content.decode()
    assert "a parent or guardian has to consent for you" in page
    assert 'name="parent_email"' in page, "the way forward is offered where they tried"
    assert not consent_is_granted(subject_id=kid.pk, purpose="personalization")

    bad = choose(client, "personalization", "parental", parent_email="not an address")
    assert "parent&#x27;s or guardian&#x27;s e-mail address" in bad.content.decode()
    assert not mailoutbox

    asked = choose(client, "personalization", "parental", parent_email="parent@example.com")
    assert "We sent your parent or guardian an e-mail" in asked.content.decode()
    assert [message.to for message in mailoutbox] == [["parent@example.com"]]
