"""Segments: definitions checked against the client's scope, members computed inside the vault
(through the gate, audited), stored as pairwise ids with an expiry, and the routes' authorization."""

from datetime import timedelta

import pytest
from django.utils import timezone

from consent.models import Method
from consent.services import consent_withdraw
from partners.models import Segment, SegmentMember
from partners.services import partner_client_update, partner_credential_revoke, segment_members_expire
from profiles.gate import Actor, profile_record_write
from tests.factories import fill, grant
from tests.partners.conftest import ACTOR, pairwise
from vault.audit.selectors import audit_entries_about

pytestmark = pytest.mark.django_db

FIELDS = ["given_name", "country", "clothing_size", "favorite_brands", "interests"]
URL = "/api/v1/partner/segments/"


@pytest.fixture
def shop(make_client):
    return make_client("shop", purposes=["personalization", "analytics"], fields=FIELDS)


def _post(partner, key, body, capture):
    with capture(execute=True):
        return partner(key).post(URL, body, content_type="application/json")


def _members(segment_id):
    segment = Segment.objects.get(pk=segment_id)
    return set(
        SegmentMember.objects.filter(segment=segment, generation=segment.generation).values_list(
            "person__pairwise", flat=True
        )
    )


def _order(person, brand, days_ago=1):
    profile_record_write(
        subject_id=person.pk,
        kind="order",
        shape="event",
        body={"items": [{"brand": brand, "size": "42"}]},
        source="partner",
        actor=Actor.partner("shop"),
        occurred_at=timezone.now() - timedelta(days=days_ago),
    )


def test_field_segment_is_computed_inside_the_vault(shop, partner, alice, bob, django_capture_on_commit_callbacks):
    client, key = shop
    grant(alice, "personalization")
    grant(bob, "personalization")
    fill(alice, country="NL", clothing_size="M")
    fill(bob, country="DE", clothing_size="M")
    body = {
        "name": "Dutch M",
        "purpose": "personalization",
        "definition": {
            "all": [
                {"field": "country", "op": "eq", "value": "nl"},
                {"field": "clothing_size", "op": "in", "values": ["M", "L"]},
            ]
        },
    }
    answer = _post(partner, key, body, django_capture_on_commit_callbacks)
    assert answer.status_code == 201, answer.json()
    segment_id = answer.json()["id"]
    read = partner(key).get(f"{URL}{segment_id}/").json()
    assert read["status"] == "ready" and read["count"] == 1
    assert read["progress"] == {"examined": 2, "total": 2, "matched": 1, "percent": 100}
    assert _members(segment_id) == {pairwise(client, alice)}
    # The computation read alice's fields through the gate, as the client: her log shows it.
    entries = audit_entries_about(subject_id=alice.pk).object_list
    assert any(e.action == "profile.read" and e.actor_name == "shop" and "country" in e.fields for e in entries)


def test_people_without_the_purposes_consent_are_never_members(
    shop, partner, alice, django_capture_on_commit_callbacks
):
    _, key = shop
    grant(alice, "analytics")  # not personalization
    fill(alice, country="NL")
    body = {
        "name": "NL",
        "purpose": "personalization",
        "definition": {"all": [{"field": "country", "op": "eq", "value": "NL"}]},
    }
    answer = _post(partner, key, body, django_capture_on_commit_callbacks)
    assert answer.status_code == 201
    assert partner(key).get(f"{URL}{answer.json()['id']}/").json()["count"] == 0


def test_event_consent_and_category_conditions(shop, partner, alice, bob, django_capture_on_commit_callbacks):
    client, key = shop
    for person in (alice, bob):
        grant(person, "personalization")
    grant(alice, "analytics")
    _order(alice, "Onitsuka")
    _order(bob, "Onitsuka", days_ago=45)  # too long ago
    fill(alice, favorite_brands="Veja")
    body = {
        "name": "Recent Onitsuka buyers",
        "purpose": "personalization",
        "definition": {
            "all": [
                {"event": "order", "within_days": 30, "match": {"items.brand": "onitsuka"}},
                {"consent": "analytics"},
                {"category": "preference"},
            ]
        },
    }
    answer = _post(partner, key, body, django_capture_on_commit_callbacks)
    assert answer.status_code == 201, answer.json()
    assert _members(answer.json()["id"]) == {pairwise(client, alice)}
    entries = audit_entries_about(subject_id=alice.pk).object_list
    assert any(e.action == "profile.events_read" and e.fields == ["event.order"] for e in entries)
    # "any": bob's old order does not count, but an "any" with his brand does nothing either
    body["definition"] = {"any": [{"event": "order", "within_days": 60, "match": {"items.brand": "Onitsuka"}}]}
    answer = _post(partner, key, body, django_capture_on_commit_callbacks)
    assert _members(answer.json()["id"]) == {pairwise(client, alice), pairwise(client, bob)}


@pytest.mark.parametrize(
    ("definition", "status", "code", "param"),
    [
        ([], 400, "invalid_definition", "definition"),
        ({"all": []}, 400, "invalid_definition", "definition.all"),
        ({"none": [{"consent": "loyalty-programme"}]}, 400, "invalid_definition", "definition"),
        ({"all": ["x"]}, 400, "invalid_definition", "definition.all.0"),
        ({"all": [{"field": "country", "op": "like", "value": "N"}]}, 400, "invalid_definition", "definition.all.0.op"),
        ({"all": [{"field": "country", "op": "eq"}]}, 400, "invalid_definition", "definition.all.0.value"),
        (
            {"all": [{"field": "country", "op": "in", "values": []}]},
            400,
            "invalid_definition",
            "definition.all.0.values",
        ),
        (
            {"all": [{"field": "clothing_size", "op": "in", "values": ["M", "XXXL"]}]},
            400,
            "invalid_definition",
            "definition.all.0.values.1",
        ),
        (
            {"all": [{"field": "country", "op": "eq", "value": "NL", "x": 1}]},
            400,
            "invalid_definition",
            "definition.all.0.x",
        ),
        (
            {"all": [{"field": "birth_date", "op": "eq", "value": "1990-01-01"}]},
            403,
            "fields_not_granted",
            "definition.all.0.field",
        ),
        ({"all": [{"field": "nope", "op": "eq", "value": "1"}]}, 403, "fields_not_granted", "definition.all.0.field"),
        ({"any": [{"consent": "loyalty-programme"}]}, 403, "purpose_not_granted", "definition.any.0.consent"),
        ({"all": [{"event": "nope", "within_days": 3}]}, 400, "invalid_definition", "definition.all.0.event"),
        ({"all": [{"event": "order", "within_days": 0}]}, 400, "invalid_definition", "definition.all.0.within_days"),
        (
            {"all": [{"event": "email_engagement", "within_days": 3}]},
            403,
            "purpose_not_granted",
            "definition.all.0.event",
        ),
        (
            {"all": [{"event": "order", "within_days": 3, "match": {"a b": 1}}]},
            400,
            "invalid_definition",
            "definition.all.0.match",
        ),
        ({"all": [{"category": "contact"}]}, 403, "fields_not_granted", "definition.all.0.category"),
        ({"all": [{"what": 1}]}, 400, "invalid_definition", "definition.all.0"),
    ],
)
def test_bad_definitions_are_refused_naming_the_part(shop, partner, definition, status, code, param):
    _, key = shop
    body = {"name": "x", "purpose": "personalization", "definition": definition}
    answer = partner(key).post(URL, body, content_type="application/json")
    assert answer.status_code == status, answer.json()
    assert answer.json()["errors"][0]["code"] == code
    assert answer.json()["errors"][0]["param"] == param
    assert not Segment.objects.exists()


def test_a_field_in_scope_that_does_not_serve_the_purpose_is_refused(shop, partner):
    _, key = shop
    body = {
        "name": "x",
        "purpose": "analytics",
        "definition": {"all": [{"field": "clothing_size", "op": "eq", "value": "M"}]},
    }  # clothing size serves personalization only
    answer = partner(key).post(URL, body, content_type="application/json")
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["param"] == "definition.all.0.field"


def test_authorization_of_every_segment_route(make_client, partner, alice, client, django_capture_on_commit_callbacks):
    shop, key = make_client("shop", purposes=["personalization"], fields=FIELDS)
    _, other_key = make_client("other", purposes=["personalization"], fields=FIELDS)
    body = {
        "name": "NL",
        "purpose": "personalization",
        "definition": {"all": [{"field": "country", "op": "eq", "value": "NL"}]},
    }
    mine = _post(partner, key, body, django_capture_on_commit_callbacks).json()["id"]
    routes = [
        ("get", f"{URL}{mine}/"),
        ("post", f"{URL}{mine}/refresh/"),
        ("get", f"{URL}{mine}/export/"),
        ("delete", f"{URL}{mine}/"),
    ]
    # Without the purpose: creating is 403.
    assert (
        partner(key).post(URL, {**body, "purpose": "loyalty-programme"}, content_type="application/json").status_code
        == 403
    )
    # Without the field: creating is 403 (test_bad_definitions...), refreshing after losing it too.
    # Another client's segment: 404 on every route, and absent from its list.
    for method, url in routes:
        assert getattr(partner(other_key), method)(url).status_code == 404, url
    assert partner(other_key).get(URL).json()["count"] == 0
    assert partner(key).get(URL).json()["count"] == 1
    # A person's session, and no credential: 401.
    client.defaults.pop("HTTP_AUTHORIZATION", None)
    client.force_login(alice)
    for method, url in [*routes, ("get", URL), ("post", URL)]:
        assert getattr(client, method)(url).status_code == 401, url
    # A revoked credential: 401.
    partner_credential_revoke(credential=shop.credentials.get(), actor=ACTOR)
    client.logout()
    for method, url in [*routes, ("get", URL), ("post", URL)]:
        assert getattr(partner(key), method)(url).status_code == 401, url
    assert Segment.objects.filter(pk=mine).exists()


def test_refresh_rechecks_the_scope_and_recomputes(shop, partner, alice, django_capture_on_commit_callbacks):
    client, key = shop
    grant(alice, "personalization")
    body = {
        "name": "NL",
        "purpose": "personalization",
        "definition": {"all": [{"field": "country", "op": "eq", "value": "NL"}]},
    }
    segment_id = _post(partner, key, body, django_capture_on_commit_callbacks).json()["id"]
    assert _members(segment_id) == set()
    fill(alice, country="NL")
    with django_capture_on_commit_callbacks(execute=True):
        answer = partner(key).post(f"{URL}{segment_id}/refresh/")
    assert answer.status_code == 202
    assert partner(key).get(f"{URL}{segment_id}/").json()["count"] == 1
    assert _members(segment_id) == {pairwise(client, alice)}
    assert SegmentMember.objects.filter(segment_id=segment_id).count() == 1  # the old run's are gone
    partner_client_update(client=client, actor=ACTOR, fields=["given_name"])
    answer = partner(key).post(f"{URL}{segment_id}/refresh/")
    assert answer.status_code == 403 and answer.json()["errors"][0]["code"] == "fields_not_granted"
    partner_client_update(client=client, actor=ACTOR, fields=FIELDS, purposes=["analytics"])
    assert partner(key).post(f"{URL}{segment_id}/refresh/").status_code == 403


def test_members_expire(shop, partner, alice, django_capture_on_commit_callbacks, settings):
    _, key = shop
    grant(alice, "personalization")
    fill(alice, country="NL")
    body = {
        "name": "NL",
        "purpose": "personalization",
        "definition": {"all": [{"field": "country", "op": "eq", "value": "NL"}]},
    }
    segment_id = _post(partner, key, body, django_capture_on_commit_callbacks).json()["id"]
    read = partner(key).get(f"{URL}{segment_id}/").json()
    expires = Segment.objects.get(pk=segment_id).expires_at
    assert abs((expires - timezone.now()) - timedelta(hours=settings.PARTNERS_SEGMENT_TTL_HOURS)) < timedelta(minutes=1)
    assert read["expires_at"]
    assert segment_members_expire() == 0
    SegmentMember.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert segment_members_expire() == 1
    Segment.objects.filter(pk=segment_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    answer = partner(key).get(f"{URL}{segment_id}/export/")
    assert answer.status_code == 409 and answer.json()["errors"][0]["code"] == "segment_not_ready"


def test_a_refresh_supersedes_a_run_and_a_deleted_segment_stops_its_job(shop, alice):
    from partners.services import segment_compute, segment_create

    client, _ = shop
    grant(alice, "personalization")
    fill(alice, country="NL")
    segment = segment_create(
        client=client,
        name="NL",
        purpose="personalization",
        definition={"all": [{"field": "country", "op": "eq", "value": "NL"}]},
    )
    old = segment.run
    Segment.objects.filter(pk=segment.pk).update(run=__import__("uuid").uuid4())
    assert segment_compute(segment_id=segment.pk, run=old) is True  # superseded: nothing done
    assert not SegmentMember.objects.exists()
    segment.delete()
    assert segment_compute(segment_id=segment.pk, run=old) is True


def test_consent_withdrawn_after_computation_is_not_in_a_new_run(
    shop, partner, alice, django_capture_on_commit_callbacks
):
    _, key = shop
    grant(alice, "personalization")
    fill(alice, country="NL")
    body = {
        "name": "NL",
        "purpose": "personalization",
        "definition": {"all": [{"field": "country", "op": "eq", "value": "NL"}]},
    }
    segment_id = _post(partner, key, body, django_capture_on_commit_callbacks).json()["id"]
    assert partner(key).get(f"{URL}{segment_id}/").json()["count"] == 1
    consent_withdraw(subject_id=alice.pk, purpose="personalization", method=Method.WEB_FORM)
    with django_capture_on_commit_callbacks(execute=True):
        partner(key).post(f"{URL}{segment_id}/refresh/")
    assert partner(key).get(f"{URL}{segment_id}/").json()["count"] == 0
