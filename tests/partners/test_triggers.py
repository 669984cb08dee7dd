"""Real-time triggers (partners/services/triggers.py, `POST /api/v1/partner/triggers/catalog/`):
the preference index kept from the gate, matching with the consent filter, notifications to the
push clients under their own pairwise ids, and who may call the route."""

import json

import pytest

from consent.models import Method
from consent.services import consent_withdraw
from partners.models import PreferenceToken, WebhookDelivery
from partners.services import partner_credential_revoke, preference_token, trigger_matches, webhooks_fanout
from tests.factories import fill, grant
from tests.partners.conftest import ACTOR, pairwise

pytestmark = pytest.mark.django_db

URL = "/api/v1/partner/triggers/catalog/"
EVENT = {"brand": "veja", "size": "m", "item": "Veja V-10, white"}


@pytest.fixture
def people(alice, bob, profile_schema):
    """Alice and Bob both like Veja in M; Carol likes Nike. All consent to personalization; Alice
    and Carol to push notifications, Bob does not. The index is built from the outbox."""
    from tests.factories import UserFactory

    carol = UserFactory.create(email="carol@example.com")
    for person, brands in ((alice, "Veja, Hoka"), (bob, "Salomon;  VEJA"), (carol, "Nike")):
        grant(person, "personalization")
        fill(person, favorite_brands=brands, clothing_size="M", shoe_size="42")
    grant(alice, "push-notifications")
    grant(carol, "push-notifications")
    webhooks_fanout()
    return alice, bob, carol


@pytest.fixture
def shop(make_client):
    return make_client("shop", purposes=["personalization"])


@pytest.fixture
def pusher(make_receiver_client):
    return make_receiver_client("pusher", purposes=["push-notifications"])


def test_the_index_holds_keyed_hashes_of_brand_and_size_pairs(people):
    alice, _bob, _carol = people
    tokens = set(PreferenceToken.objects.filter(subject_id=alice.pk).values_list("token", flat=True))
    assert tokens == {preference_token(brand=b, size=s) for b in ("Veja", "Hoka") for s in ("M", "42")}
    assert preference_token(brand=" VEJA ", size="m") == preference_token(brand="veja", size="M")
    dump = json.dumps(list(PreferenceToken.objects.values_list("token", flat=True)))
    assert "veja" not in dump.lower() and "hoka" not in dump.lower()


def test_matching_keeps_only_people_who_consented_to_push(people):
    alice, _bob, carol = people
    assert set(trigger_matches(brand="Veja", size="M")) == {alice.pk}  # Bob matches, without push consent
    assert set(trigger_matches(brand="Nike", size="42")) == {carol.pk}
    assert trigger_matches(brand="Nike", size="S") == []


def test_a_withdrawal_takes_effect_at_once_and_the_index_follows(people):
    alice, _, _ = people
    consent_withdraw(subject_id=alice.pk, purpose="push-notifications", method=Method.WEB_FORM)
    assert trigger_matches(brand="Veja", size="M") == []  # checked at trigger time, before any fan-out
    grant(alice, "push-notifications")
    consent_withdraw(subject_id=alice.pk, purpose="personalization", method=Method.WEB_FORM)
    assert trigger_matches(brand="Veja", size="M") == []
    webhooks_fanout()
    assert not PreferenceToken.objects.filter(subject_id=alice.pk).exists()  # her preferences are not kept


def test_a_profile_change_moves_the_person_in_the_index(people):
    alice, _, carol = people
    fill(carol, favorite_brands="Veja")
    webhooks_fanout()
    assert set(trigger_matches(brand="Veja", size="M")) == {alice.pk, carol.pk}
    assert trigger_matches(brand="Nike", size="M") == []


def test_a_catalog_event_notifies_the_push_client(people, shop, pusher, partner, settings):
    alice, _, carol = people
    settings.PARTNERS_TRIGGER_BATCH = 1
    _, key = shop
    push_client, _, _ = pusher
    fill(carol, favorite_brands="Veja")
    webhooks_fanout()
    WebhookDelivery.objects.all().delete()
    answer = partner(key).post(URL, EVENT, content_type="application/json")
    assert answer.status_code == 202
    trigger = answer.json()["trigger"]
    assert set(answer.json()) == {"trigger"}  # not whom, nor how many
    deliveries = list(WebhookDelivery.objects.filter(event_type="notification.requested"))
    assert {d.client for d in deliveries} == {push_client}
    assert len(deliveries) == 2  # one batch per person here
    assert {p for d in deliveries for p in d.payload["people"]} == {
        pairwise(push_client, alice),
        pairwise(push_client, carol),
    }
    assert {d.payload["trigger"] for d in deliveries} == {trigger}
    assert deliveries[0].payload["catalog"] == EVENT
    assert all(d.status == "pending" for d in deliveries)  # sent by a worker, never by the request


def test_the_people_matched_are_audited_by_field_name(people, shop, pusher, partner):
    from vault.models import AuditEntry

    _, key = shop
    partner(key).post(URL, EVENT, content_type="application/json")
    (entry,) = AuditEntry.objects.filter(action="partners.trigger_match")
    assert entry.purpose == "push-notifications"
    assert entry.actor_id == "shop"
    assert entry.fields == ["favorite_brands", "shoe_size", "clothing_size"]


# --- Who may call the route ------------------------------------------------------------------------


def test_a_client_without_personalization_is_403(people, make_client, pusher, partner):
    _, key = make_client("mailer", purposes=["analytics"])
    answer = partner(key).post(URL, EVENT, content_type="application/json")
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["code"] == "purpose_not_granted"
    assert not WebhookDelivery.objects.filter(event_type="notification.requested").exists()


def test_fields_do_not_enter_it(people, make_client, pusher, partner):
    """The route reads no field: a client with personalization and no fields may trigger, and
    learns nothing about anyone (the same answer whoever matched)."""
    _, key = make_client("bare", purposes=["personalization"], fields=[])
    assert partner(key).post(URL, EVENT, content_type="application/json").status_code == 202
    assert partner(key).post(URL, {"brand": "nobody", "size": "XS"}, content_type="application/json").status_code == 202


def test_a_revoked_credential_and_a_persons_session_are_401(people, shop, pusher, partner, client, alice):
    shop_client, key = shop
    partner_credential_revoke(credential=shop_client.credentials.get(), actor=ACTOR)
    assert partner(key).post(URL, EVENT, content_type="application/json").status_code == 401
    client.defaults.pop("HTTP_AUTHORIZATION", None)
    client.force_login(alice)
    assert client.post(URL, EVENT, content_type="application/json").status_code == 401
    assert not WebhookDelivery.objects.filter(event_type="notification.requested").exists()


def test_the_push_client_sees_its_own_ids_not_the_shops(people, shop, pusher, partner):
    alice, _, _ = people
    shop_client, key = shop
    push_client, _, _ = pusher
    partner(key).post(URL, {"brand": "hoka", "size": "42"}, content_type="application/json")
    (delivery,) = WebhookDelivery.objects.filter(event_type="notification.requested")
    assert delivery.payload["people"] == [pairwise(push_client, alice)]
    assert pairwise(shop_client, alice) not in json.dumps(delivery.payload)


@pytest.mark.parametrize(
    ("body", "param"),
    [({"size": "M"}, "brand"), ({"brand": "Veja"}, "size"), ({"brand": "x" * 101, "size": "M"}, "brand")],
)
def test_bad_input_is_400_naming_it_and_nothing_is_enqueued(people, shop, pusher, partner, body, param):
    _, key = shop
    answer = partner(key).post(URL, body, content_type="application/json")
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["param"] == param
    assert not WebhookDelivery.objects.filter(event_type="notification.requested").exists()
