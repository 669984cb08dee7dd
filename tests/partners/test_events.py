"""Event ingestion (`POST /api/v1/partner/events/`): per-item refusals, consent, malformed
items, batch size, idempotency keys, ciphertext at rest, and the authorization matrix."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from consent.models import Method
from consent.services import consent_withdraw
from partners.models import IngestionRequest
from partners.services import partner_credential_revoke, partner_ingestion_requests_purge
from partners.tasks import ingestion_requests_purge
from profiles.gate import Actor, profile_records_read
from profiles.models import ProfileEvent
from profiles.services import profile_restrict
from tests.factories import grant
from tests.partners.conftest import ACTOR, pairwise
from vault import crypto
from vault.audit.selectors import audit_entries_about

pytestmark = pytest.mark.django_db

URL = "/api/v1/partner/events/"
SECRET = "Zwanenburgwal-secret-SKU"


def _event(person: str, kind: str = "order", **changes) -> dict:
    when = (timezone.now() - timedelta(hours=1)).isoformat()
    return {"person": person, "kind": kind, "occurred_at": when, "body": {"sku": SECRET, "total": "59.90"}} | changes


def _post(partner, key, payload, **headers):
    return partner(key).post(URL, json.dumps(payload), content_type="application/json", **headers)


@pytest.fixture
def shop(make_client):
    """A client that may post orders and product views (personalization), not e-mail engagement."""
    return make_client("shop", purposes=["personalization"], record_kinds=["order", "product_view"])


def _events(person) -> list:
    with crypto.key_scope():
        return profile_records_read(subject_id=person.pk, purpose="personalization", actor=ACTOR, shape="event")


def test_a_batch_is_stored_through_the_gate_sealed_and_audited(shop, partner, alice):
    client, key = shop
    grant(alice, "personalization")
    me = pairwise(client, alice)
    answer = _post(partner, key, {"events": [_event(me), _event(me, "product_view", body={"sku": "SKU-1"})]})
    assert answer.status_code == 200
    assert answer.json() == {"accepted": 2, "refused": 0, "refusals": []}
    stored = _events(alice)
    assert sorted(e.kind for e in stored) == ["order", "product_view"]
    assert {e.source for e in stored} == {"partner"} and {e.source_name for e in stored} == {"shop"}
    assert {"sku": SECRET, "total": "59.90"} in [e.body for e in stored]
    written = [
        e
        for e in audit_entries_about(subject_id=alice.pk, per_page=50).object_list
        if e.action == "profile.event_write"
    ]
    assert sorted(e.fields[0] for e in written) == ["event.order", "event.product_view"]
    assert {(e.actor_type, e.actor_name, e.purpose) for e in written} == {("partner", "shop", "personalization")}


def test_one_event_answers_201_and_its_refusal_as_an_error(shop, partner, alice, bob):
    client, key = shop
    grant(alice, "personalization")
    answer = _post(partner, key, _event(pairwise(client, alice)))
    assert answer.status_code == 201
    assert answer.json() == {"accepted": 1, "refused": 0, "refusals": []}
    refused = _post(partner, key, _event(pairwise(client, bob)))
    assert refused.status_code == 404
    assert refused.json()["errors"] == [{"code": "unknown_person", "message": "No such person.", "param": "person"}]
    bad = _post(partner, key, _event(pairwise(client, alice), occurred_at="yesterday", body=[1]))
    assert bad.status_code == 400
    assert [(e["code"], e["param"]) for e in bad.json()["errors"]] == [
        ("invalid_event", "occurred_at"),
        ("not_an_object", "body"),
    ]
    assert ProfileEvent.objects.count() == 1


def test_refused_items_are_listed_by_index_and_not_stored(shop, make_client, partner, alice, bob):
    client, key = shop
    other, _ = make_client("other", purposes=["personalization"])
    grant(alice, "personalization")
    me, bob_id = pairwise(client, alice), pairwise(client, bob)
    batch = [
        _event(me),
        _event(bob_id),  # bob never consented
        _event("zzzzzzzzzzzzzzzzzzzzzzzzzz"),  # nobody
        _event(pairwise(other, alice)),  # another client's id for alice
        _event(me, "email_engagement"),  # a kind this client may not post
        _event(me, occurred_at="2026-13-45"),
    ]
    answer = _post(partner, key, {"events": batch})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["accepted"], body["refused"]) == (1, 5)
    assert [(r["index"], r["status"], r["code"], r["param"]) for r in body["refusals"]] == [
        (1, 404, "unknown_person", "person"),
        (2, 404, "unknown_person", "person"),
        (3, 404, "unknown_person", "person"),
        (4, 403, "kind_not_granted", "kind"),
        (5, 400, "invalid_event", "occurred_at"),
    ]
    # Not consented and unknown answer alike: consent state does not leak.
    assert body["refusals"][0]["message"] == body["refusals"][1]["message"]
    assert ProfileEvent.objects.count() == 1
    assert not ProfileEvent.objects.filter(subject_id=bob.pk).exists()


def test_a_withdrawn_consent_refuses_the_next_events(shop, partner, alice):
    client, key = shop
    grant(alice, "personalization")
    me = pairwise(client, alice)
    assert _post(partner, key, _event(me)).status_code == 201
    consent_withdraw(subject_id=alice.pk, purpose="personalization", method=Method.WEB_FORM)
    answer = _post(partner, key, {"events": [_event(me)]})
    assert answer.json()["refusals"][0]["code"] == "unknown_person"
    assert ProfileEvent.objects.count() == 1


def test_a_restricted_or_erased_person_is_unknown(shop, partner, alice, bob):
    client, key = shop
    grant(alice, "personalization")
    grant(bob, "personalization")
    profile_restrict(subject_id=alice.pk, actor=Actor.staff("1"))
    crypto.subject_shred(bob.pk)
    answer = _post(partner, key, {"events": [_event(pairwise(client, alice)), _event(pairwise(client, bob))]})
    assert answer.status_code == 200
    assert [r["code"] for r in answer.json()["refusals"]] == ["unknown_person", "unknown_person"]
    assert ProfileEvent.objects.count() == 0


def test_a_merged_persons_old_id_posts_for_the_survivor(shop, partner, alice, bob, staff):
    from profiles.services import profile_merge_by_staff

    client, key = shop
    old = pairwise(client, bob)
    grant(alice, "personalization")
    profile_merge_by_staff(survivor_id=alice.pk, merged_id=bob.pk, actor=Actor.staff(staff.pk))
    assert _post(partner, key, _event(old)).status_code == 201
    assert ProfileEvent.objects.get().subject_id == alice.pk


MALFORMED = {
    "unknown kind": ({"kind": "bogus"}, "unknown_kind", "kind"),
    "a document kind": ({"kind": "social_profile"}, "unknown_kind", "kind"),
    "not a date": ({"occurred_at": "last tuesday"}, "invalid_event", "occurred_at"),
    "no offset": ({"occurred_at": "2026-01-01T10:00:00"}, "invalid_event", "occurred_at"),
    "in the future": ({"occurred_at": "2999-01-01T10:00:00+00:00"}, "invalid_event", "occurred_at"),
    "a number for a date": ({"occurred_at": 1700000000}, "invalid_event", "occurred_at"),
    "older than kept": ({"occurred_at": "2001-01-01T10:00:00+00:00"}, "invalid_value", "occurred_at"),
    "body a list": ({"body": [1, 2]}, "not_an_object", "body"),
    "body a string": ({"body": "hello"}, "not_an_object", "body"),
    "body too large": ({"body": {"note": "x" * 20_000}}, "too_large", "body"),
    "body too deep": ({"body": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}}, "too_deep", "body"),
    "an unknown part": ({"extra": 1}, "unknown_key", "extra"),
    "a bad person id": ({"person": "NOT AN ID!"}, "invalid_event", "person"),
}


@pytest.mark.parametrize("change", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_item_is_400_for_that_item(shop, partner, alice, change):
    client, key = shop
    grant(alice, "personalization")
    me = pairwise(client, alice)
    changes, code, param = change
    answer = _post(partner, key, {"events": [_event(me), _event(me) | changes]})
    assert answer.status_code == 200
    assert answer.json()["accepted"] == 1
    assert [(r["index"], r["status"], r["code"], r["param"]) for r in answer.json()["refusals"]] == [
        (1, 400, code, param)
    ]
    assert ProfileEvent.objects.count() == 1


def test_a_batch_where_every_item_is_malformed_is_400(shop, partner, alice):
    client, key = shop
    me = pairwise(client, alice)
    answer = _post(partner, key, {"events": ["not an event", {"person": me}]})
    assert answer.status_code == 400
    params = [e["param"] for e in answer.json()["errors"]]
    assert params == ["events.0.event", "events.1.body", "events.1.kind", "events.1.occurred_at"]
    assert ProfileEvent.objects.count() == 0


@pytest.mark.parametrize(
    "payload",
    [{"events": []}, {"events": "many"}, {"events": [], "more": 1}, [1, 2]],
    ids=["empty", "not a list", "another key", "not an object"],
)
def test_a_request_that_is_no_batch_is_400(shop, partner, payload):
    _, key = shop
    answer = _post(partner, key, payload)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == "invalid_event"


def test_an_oversized_batch_is_413_and_nothing_is_stored(shop, partner, alice, settings):
    client, key = shop
    settings.PARTNERS_EVENTS_MAX_BATCH = 3
    grant(alice, "personalization")
    me = pairwise(client, alice)
    answer = _post(partner, key, {"events": [_event(me)] * 4})
    assert answer.status_code == 413
    assert answer.json() == {
        "status": 413,
        "errors": [{"code": "too_many_events", "message": "At most 3 events in one batch.", "param": "events"}],
    }
    assert ProfileEvent.objects.count() == 0
    assert _post(partner, key, {"events": [_event(me)] * 3}).json()["accepted"] == 3


def test_a_replayed_idempotency_key_gets_the_same_answer_and_stores_nothing_more(shop, partner, alice, bob):
    client, key = shop
    grant(alice, "personalization")
    payload = {"events": [_event(pairwise(client, alice)), _event(pairwise(client, bob))]}
    first = _post(partner, key, payload, HTTP_IDEMPOTENCY_KEY='"order-sync-42"')
    audited = len(audit_entries_about(subject_id=alice.pk, per_page=100).object_list)
    grant(bob, "personalization")  # would now be accepted: the replay still answers as before
    again = _post(partner, key, payload, HTTP_IDEMPOTENCY_KEY='"order-sync-42"')
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert ProfileEvent.objects.count() == 1
    assert len(audit_entries_about(subject_id=alice.pk, per_page=100).object_list) == audited
    # A fresh key is a new request.
    assert _post(partner, key, payload, HTTP_IDEMPOTENCY_KEY="order-sync-43").json()["accepted"] == 2


def test_the_same_key_with_another_body_is_422(shop, partner, alice):
    client, key = shop
    grant(alice, "personalization")
    me = pairwise(client, alice)
    _post(partner, key, _event(me), HTTP_IDEMPOTENCY_KEY="k1")
    answer = _post(partner, key, _event(me, body={"sku": "other"}), HTTP_IDEMPOTENCY_KEY="k1")
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert ProfileEvent.objects.count() == 1


def test_keys_are_per_client_and_kept_as_keyed_hashes_only(shop, make_client, partner, alice):
    client, key = shop
    other, other_key = make_client("other", purposes=["personalization"], record_kinds=["order"])
    grant(alice, "personalization")
    assert _post(partner, key, _event(pairwise(client, alice)), HTTP_IDEMPOTENCY_KEY="same").status_code == 201
    assert _post(partner, other_key, _event(pairwise(other, alice)), HTTP_IDEMPOTENCY_KEY="same").status_code == 201
    assert ProfileEvent.objects.count() == 2
    kept = IngestionRequest.objects.filter(client=client).get()
    assert "same" not in kept.key_hash and len(kept.key_hash) == 64
    assert pairwise(client, alice) not in json.dumps(kept.response)


def test_an_error_is_not_kept_and_an_expired_key_is_forgotten(shop, partner, alice):
    client, key = shop
    me = pairwise(client, alice)
    assert _post(partner, key, _event(me), HTTP_IDEMPOTENCY_KEY="k").status_code == 404  # no consent yet
    grant(alice, "personalization")
    assert _post(partner, key, _event(me), HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    IngestionRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _post(partner, key, _event(me), HTTP_IDEMPOTENCY_KEY="k").get("Idempotent-Replayed") is None
    assert ProfileEvent.objects.count() == 2
    IngestionRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert ingestion_requests_purge.apply().get() == 1  # in this process, whatever the broker
    assert partner_ingestion_requests_purge() == 0


@pytest.mark.parametrize("value", ["", "x" * 256, "caf\u00e9"], ids=["empty", "too long", "not ascii"])
def test_a_bad_idempotency_key_is_400(shop, partner, alice, value):
    client, key = shop
    answer = _post(partner, key, _event(pairwise(client, alice)), HTTP_IDEMPOTENCY_KEY=value)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["param"] == "Idempotency-Key"


def test_event_bodies_are_ciphertext_at_rest(shop, partner, alice):
    client, key = shop
    grant(alice, "personalization")
    assert _post(partner, key, _event(pairwise(client, alice)), HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    with connection.cursor() as cursor:
        for table in (ProfileEvent._meta.db_table, IngestionRequest._meta.db_table):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608
            for row in cursor.fetchall():
                dumped = b"".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row)
                assert SECRET.encode() not in dumped
                assert b"59.90" not in dumped


def test_a_kind_the_client_may_not_post_is_403(make_client, partner, alice):
    client, key = make_client("recommender", purposes=["personalization"], record_kinds=["product_view"])
    grant(alice, "personalization")  # consented: the refusal is the client's, not the person's
    me = pairwise(client, alice)
    answer = _post(partner, key, _event(me))  # an order
    assert answer.status_code == 403
    assert answer.json()["errors"][0] == {
        "code": "kind_not_granted",
        "message": "This client may not post events of this kind.",
        "param": "kind",
    }
    assert _post(partner, key, _event(me, "product_view", body={"sku": "SKU-1"})).status_code == 201


def test_unknown_revoked_and_missing_credentials_are_401(shop, partner, alice):
    client, key = shop
    grant(alice, "personalization")
    payload = _event(pairwise(client, alice))
    assert _post(partner, "nope.nope", payload).status_code == 401
    partner_credential_revoke(credential=client.credentials.get(), actor=ACTOR)
    assert _post(partner, key, payload).status_code == 401
    assert ProfileEvent.objects.count() == 0


def test_a_persons_session_is_not_a_partner(shop, client, alice):
    shop_client, _ = shop
    grant(alice, "personalization")
    client.force_login(alice)
    payload = _event(pairwise(shop_client, alice))
    assert client.post(URL, json.dumps(payload), content_type="application/json").status_code == 401
    assert ProfileEvent.objects.count() == 0


def test_a_batch_runs_a_fixed_number_of_queries(shop, partner, alice, bob, django_assert_max_num_queries):
    from django.test.utils import CaptureQueriesContext

    from tests.factories import UserFactory

    client, key = shop
    people = [alice, bob, *(UserFactory.create(email=f"p{n}@example.com") for n in range(8))]
    for person in people:
        grant(person, "personalization")
    ids = [pairwise(client, person) for person in people]

    def batch(size: int) -> list[dict]:
        return [_event(ids[n % 10], "order" if n % 2 else "product_view") for n in range(size)]

    with django_assert_max_num_queries(32):  # new people: their data keys are made in bulk
        assert _post(partner, key, {"events": batch(10)}, HTTP_IDEMPOTENCY_KEY="first").json()["accepted"] == 10
    counts = []
    for size in (10, 200):
        with CaptureQueriesContext(connection) as captured:
            assert (
                _post(partner, key, {"events": batch(size)}, HTTP_IDEMPOTENCY_KEY=f"b{size}").json()["accepted"] == size
            )
        counts.append(len(captured))
    assert counts[0] == counts[1] <= 30
