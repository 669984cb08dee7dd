"""The consent check and the partner authentication around every partner route."""

import pytest

from consent.models import Method
from consent.services import consent_withdraw
from partners.services import partner_client_update, partner_credential_revoke
from tests.factories import grant
from tests.partners.conftest import ACTOR, pairwise

pytestmark = pytest.mark.django_db


def _url(person: str, purpose: str = "analytics") -> str:
    return f"/api/v1/partner/people/{person}/consent/{purpose}/"


def test_the_consent_check_answers_for_the_clients_purpose(make_client, partner, alice):
    mailer, key = make_client(purposes=["analytics"])
    grant(alice, "analytics")
    person = pairwise(mailer, alice)
    answer = partner(key).get(_url(person))
    assert answer.status_code == 200
    assert answer.json() == {"person": person, "purpose": "analytics", "granted": True}
    consent_withdraw(subject_id=alice.pk, purpose="analytics", method=Method.WEB_FORM)
    assert partner(key).get(_url(person)).json()["granted"] is False


def test_a_purpose_the_client_lacks_is_403(make_client, partner, alice):
    _, key = make_client(purposes=["analytics"])
    answer = partner(key).get(_url("whoever", "personalization"))
    assert answer.status_code == 403
    assert answer.json()["errors"][0] == {
        "code": "purpose_not_granted",
        "message": "This client may not use this purpose.",
        "param": "purpose",
    }


def test_another_clients_id_names_nobody(make_client, partner, alice):
    shop, _ = make_client("shop", purposes=["analytics"])
    mailer, key = make_client("mailer", purposes=["analytics"])
    theirs, mine = pairwise(shop, alice), pairwise(mailer, alice)
    assert theirs != mine
    assert partner(key).get(_url(theirs)).status_code == 404
    assert partner(key).get(_url(mine)).status_code == 200


def test_unknown_revoked_and_missing_credentials_are_401(make_client, partner, alice):
    mailer, key = make_client(purposes=["analytics"])
    person = pairwise(mailer, alice)
    assert partner("nope.nope").get(_url(person)).status_code == 401
    credential = mailer.credentials.get()
    partner_credential_revoke(credential=credential, actor=ACTOR)
    answer = partner(key).get(_url(person))
    assert answer.status_code == 401
    assert answer["WWW-Authenticate"].startswith("Bearer")


def test_a_persons_session_is_not_a_partner(client, alice, make_client):
    mailer, _ = make_client(purposes=["analytics"])
    client.force_login(alice)
    assert client.get(_url(pairwise(mailer, alice))).status_code == 401


def test_an_address_outside_the_allowlist_is_refused(make_client, partner, alice):
    mailer, key = make_client(purposes=["analytics"], ip_allowlist=["10.0.0.0/8"])
    person = pairwise(mailer, alice)
    assert partner(key).get(_url(person)).status_code == 401
    partner_client_update(client=mailer, actor=ACTOR, ip_allowlist=["127.0.0.0/8"])
    assert partner(key).get(_url(person)).status_code == 200


def test_after_a_merge_the_merged_persons_id_names_the_survivor(make_client, partner, alice, bob, staff):
    from profiles.gate import Actor
    from profiles.services import profile_merge_by_staff

    mailer, key = make_client(purposes=["analytics"])
    old = pairwise(mailer, bob)
    grant(alice, "analytics")
    profile_merge_by_staff(survivor_id=alice.pk, merged_id=bob.pk, actor=Actor.staff(staff.pk))
    assert partner(key).get(_url(old)).json()["granted"] is True
