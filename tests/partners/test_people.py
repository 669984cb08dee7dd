"""Reading people: one person's profile for a purpose, the changes feed and the lookup, with the
authorization matrix of each route (purpose, field, another client's ids, a revoked credential,
a person's session) and the round trips of one person's read."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from consent.models import Method
from consent.services import consent_refuse, consent_withdraw
from partners.services import partner_credential_revoke
from profiles.gate import Actor, profile_read
from profiles.services import profile_restrict
from tests.factories import UserFactory, fill, grant
from tests.partners.conftest import ACTOR, pairwise
from vault.models import AuditEntry

pytestmark = pytest.mark.django_db

SCOPE = ["given_name", "city", "family_name", "country"]  # family_name does not serve personalization


def _person_url(person: str, purpose: str | None = "personalization", fields: str | None = None) -> str:
    query = [f"purpose={purpose}"] if purpose else []
    if fields is not None:
        query.append(f"fields={fields}")
    return f"/api/v1/partner/people/{person}/?" + "&".join(query)


@pytest.fixture
def shop(make_client):
    return make_client("shop", purposes=["personalization", "analytics"], fields=SCOPE)


# --- One person's profile ----------------------------------------------------------------------


def test_by_default_the_fields_of_the_scope_that_serve_the_purpose(shop, partner, alice):
    client, key = shop
    grant(alice, "personalization")
    fill(alice, given_name="Alice", city="Lyon", family_name="Liddell")
    person = pairwise(client, alice)
    answer = partner(key).get(_person_url(person))
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["person"] == person and body["purpose"] == "personalization"
    # family_name is in the scope but does not serve personalization; country is unset: null.
    assert set(body["fields"]) == {"given_name", "city", "country"}
    assert body["fields"]["country"] is None
    given = body["fields"]["given_name"]
    assert given["value"] == "Alice" and given["source"] == "self_service"
    assert set(given) == {"value", "source", "collected_on"}  # no source_name, no exact time
    assert len(given["collected_on"]) == 10


def test_fields_asked_are_the_only_ones_read_and_audited(shop, partner, alice):
    client, key = shop
    grant(alice, "personalization")
    fill(alice, given_name="Alice", city="Lyon")
    answer = partner(key).get(_person_url(pairwise(client, alice), fields="city"))
    assert answer.status_code == 200
    (field,) = answer.json()["fields"].items()
    assert field[0] == "city" and field[1]["value"] == "Lyon"
    entry = AuditEntry.objects.order_by("-seq").first()
    assert (entry.action, entry.actor_type, entry.actor_id, entry.purpose, entry.fields) == (
        "profile.read",
        "partner",
        "shop",
        "personalization",
        ["city"],
    )


def test_fields_outside_the_scope_are_403_and_named(shop, partner, alice):
    client, key = shop
    grant(alice, "personalization")
    answer = partner(key).get(_person_url(pairwise(client, alice), fields="given_name,birth_date,postal_code"))
    assert answer.status_code == 403
    errors = answer.json()["errors"]
    assert {e["code"] for e in errors} == {"fields_not_granted"}
    assert [e["param"] for e in errors] == ["fields.birth_date", "fields.postal_code"]


def test_something_else_asked_as_a_field_is_refused_without_being_echoed(shop, partner, alice):
    client, key = shop
    answer = partner(key).get(_person_url(pairwise(client, alice), fields="alice@example.com"))
    assert answer.status_code == 403
    assert "alice" not in answer.content.decode()
    assert answer.json()["errors"][0]["param"] == "fields"


def test_a_field_of_the_scope_that_does_not_serve_the_purpose_is_403(shop, partner, alice):
    client, key = shop
    grant(alice, "personalization")
    answer = partner(key).get(_person_url(pairwise(client, alice), fields="given_name,family_name"))
    assert answer.status_code == 403
    assert answer.json()["errors"][0] == {
        "code": "field_not_for_purpose",
        "message": "This field may not be used for this purpose.",
        "param": "family_name",
    }


def test_no_consent_restriction_or_unknown_id_answer_the_same_404(shop, partner, alice, bob, staff):
    client, key = shop
    fill(alice, given_name="Alice")
    unknown = partner(key).get(_person_url("k3q5c2xv7m4n8p6r2t4w6y8z2a"))
    never = partner(key).get(_person_url(pairwise(client, alice)))
    grant(bob, "personalization")
    consent_withdraw(subject_id=bob.pk, purpose="personalization", method=Method.WEB_FORM)
    withdrawn = partner(key).get(_person_url(pairwise(client, bob)))
    carol = type(alice).objects.create_user(email="carol@example.com", password="x" * 12)
    grant(carol, "personalization")
    profile_restrict(subject_id=carol.pk, actor=Actor.person(carol.pk))
    restricted = partner(key).get(_person_url(pairwise(client, carol)))
    for answer in (unknown, never, withdrawn, restricted):
        assert answer.status_code == 404
        assert answer.content == unknown.content
    assert unknown.json()["errors"][0]["code"] == "unknown_person"


def test_a_purpose_the_client_lacks_is_403_and_none_is_400(shop, partner, alice):
    client, key = shop
    person = pairwise(client, alice)
    lacking = partner(key).get(_person_url(person, "loyalty-programme"))
    assert lacking.status_code == 403 and lacking.json()["errors"][0]["code"] == "purpose_not_granted"
    missing = partner(key).get(_person_url(person, None))
    assert missing.status_code == 400 and missing.json()["errors"][0]["param"] == "purpose"


def test_a_client_without_the_field_gets_403(make_client, partner, alice):
    client, key = make_client("counter", purposes=["personalization"], fields=["city"])
    grant(alice, "personalization")
    answer = partner(key).get(_person_url(pairwise(client, alice), fields="given_name"))
    assert answer.status_code == 403 and answer.json()["errors"][0]["param"] == "fields.given_name"


def test_another_clients_id_is_404(shop, make_client, partner, alice):
    other, _ = make_client("mailer", purposes=["personalization"], fields=SCOPE)
    _, key = shop
    grant(alice, "personalization")
    assert partner(key).get(_person_url(pairwise(other, alice))).status_code == 404


def test_a_revoked_credential_and_a_persons_session_are_401(shop, partner, client, alice):
    shop_client, key = shop
    grant(alice, "personalization")
    url = _person_url(pairwise(shop_client, alice))
    assert partner(key).get(url).status_code == 200
    partner_credential_revoke(credential=shop_client.credentials.get(), actor=ACTOR)
    assert partner(key).get(url).status_code == 401
    client.defaults.pop("HTTP_AUTHORIZATION")
    client.force_login(alice)
    assert client.get(url).status_code == 401


@pytest.mark.skipif(connection.vendor != "postgresql", reason="4 round trips is the PostgreSQL figure")
def test_one_persons_read_through_the_gate_is_at_most_4_round_trips(shop, alice, django_assert_max_num_queries):
    grant(alice, "personalization")
    fill(alice, given_name="Alice", city="Lyon", country="FR")
    with django_assert_max_num_queries(4):
        held = profile_read(
            subject_id=alice.pk,
            fields=SCOPE,
            purpose="personalization",
            actor=Actor.partner("shop"),
            permitted_only=True,
        )
    assert set(held) == {"given_name", "city", "country"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="4 round trips is the PostgreSQL figure")
def test_outside_a_transaction_the_read_opens_none(committed_db, profile_schema):
    """No BEGIN or COMMIT either: every statement runs on its own (the audit append is one)."""
    alice = UserFactory.create(email="alice@example.com")
    grant(alice, "personalization")
    fill(alice, given_name="Alice")
    seen = []

    def spy(execute, sql, params, many, context):
        seen.append(connection.in_atomic_block)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        profile_read(subject_id=alice.pk, fields=["given_name"], purpose="personalization", actor=Actor.partner("shop"))
    assert len(seen) <= 4
    assert not any(seen)


def test_the_whole_request_round_trips(shop, partner, alice):
    """Reported: the API key (cached after the first call), the pairwise id, its merges, the gate."""
    client, key = shop
    grant(alice, "personalization")
    fill(alice, given_name="Alice")
    url = _person_url(pairwise(client, alice))
    partner(key).get(url)
    with CaptureQueriesContext(connection) as queries:
        assert partner(key).get(url).status_code == 200
    limit = 5 if connection.vendor == "postgresql" else 9
    assert len(queries.captured_queries) <= limit, [q["sql"][:80] for q in queries.captured_queries]


# --- The changes feed --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _settled(settings):
    settings.PARTNER_CHANGES_SETTLE_SECONDS = 0


def _changes(partner, key, purpose="personalization", cursor=None, limit=None):
    url = f"/api/v1/partner/changes/?purpose={purpose}"
    if cursor:
        url += f"&cursor={cursor}"
    if limit:
        url += f"&limit={limit}"
    return partner(key).get(url)


def test_the_feed_names_consent_changes_and_permitted_fields_changed(shop, partner, alice, bob):
    client, key = shop
    grant(alice, "personalization")
    fill(alice, given_name="Alice", family_name="Liddell", postal_code="69001")
    answer = _changes(partner, key)
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["results"] == [
        {"person": pairwise(client, alice), "granted": True, "consent_changed": True, "fields": ["given_name"]}
    ]
    assert body["more"] is False
    # Nothing new since the cursor; then only what changed.
    again = _changes(partner, key, cursor=body["cursor"]).json()
    assert again["results"] == []
    fill(alice, city="Lyon")
    consent_withdraw(subject_id=alice.pk, purpose="personalization", method=Method.WEB_FORM)
    later = _changes(partner, key, cursor=again["cursor"]).json()["results"]
    # She withdrew: the client hears of it (it knows her), but not of her new city.
    assert later == [{"person": pairwise(client, alice), "granted": False, "consent_changed": True, "fields": []}]


def test_a_stranger_who_refused_or_changed_without_consent_is_not_news(shop, partner, alice, bob):
    client, key = shop
    consent_refuse(subject_id=bob.pk, purpose="personalization", method=Method.WEB_FORM)
    fill(alice, given_name="Alice")
    assert _changes(partner, key).json()["results"] == []
    assert not client.pairwise_ids.exists()  # no id was even made for them


def test_pages_are_bounded_and_follow_on(shop, partner, alice, bob):
    client, key = shop
    grant(alice, "personalization")
    grant(bob, "personalization")
    first = _changes(partner, key, limit=1).json()
    assert len(first["results"]) == 1 and first["more"] is True
    second = _changes(partner, key, cursor=first["cursor"], limit=1).json()
    assert len(second["results"]) == 1
    assert {first["results"][0]["person"], second["results"][0]["person"]} == {
        pairwise(client, alice),
        pairwise(client, bob),
    }
    assert _changes(partner, key, limit=501).status_code == 400
    assert _changes(partner, key, limit="x").status_code == 400


def test_a_cursor_of_another_client_purpose_or_altered_is_400(shop, make_client, partner, alice):
    _, key = shop
    _, other_key = make_client("mailer", purposes=["personalization", "analytics"], fields=SCOPE)
    cursor = _changes(partner, key).json()["cursor"]
    assert "personalization" not in cursor  # opaque
    for answer in (
        _changes(partner, other_key, cursor=cursor),
        _changes(partner, key, purpose="analytics", cursor=cursor),
        _changes(partner, key, cursor=cursor[:-2] + "xx"),
    ):
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["code"] == "invalid_cursor"


def test_the_feed_authorization(shop, partner, client, alice):
    shop_client, key = shop
    assert _changes(partner, key, purpose="loyalty-programme").status_code == 403
    assert partner(key).get("/api/v1/partner/changes/").status_code == 400
    partner_credential_revoke(credential=shop_client.credentials.get(), actor=ACTOR)
    assert _changes(partner, key).status_code == 401
    client.defaults.pop("HTTP_AUTHORIZATION")
    client.force_login(alice)
    assert client.get("/api/v1/partner/changes/?purpose=personalization").status_code == 401


def test_a_client_without_permitted_fields_hears_only_of_consent(make_client, partner, alice):
    client, key = make_client("counter", purposes=["personalization"], fields=["family_name"])
    grant(alice, "personalization")
    fill(alice, given_name="Alice", family_name="Liddell")
    results = _changes(partner, key).json()["results"]
    assert results == [{"person": pairwise(client, alice), "granted": True, "consent_changed": True, "fields": []}]


# --- Lookup by e-mail or phone -----------------------------------------------------------------


@pytest.fixture
def loyalty(make_client):
    return make_client("loyalty", purposes=["loyalty-programme"], fields=["email", "given_name"])


def _lookup(partner, key, value="alice.contact@example.com", field="email", purpose="loyalty-programme"):
    return partner(key).post(
        "/api/v1/partner/people/lookup/",
        {"field": field, "value": value, "purpose": purpose},
        content_type="application/json",
    )


def test_the_lookup_names_a_consented_person_only(loyalty, partner, alice, bob):
    client, key = loyalty
    fill(alice, email="alice.contact@example.com")
    fill(bob, email="bob.contact@example.com")
    grant(alice, "loyalty-programme")
    found = _lookup(partner, key)
    assert found.status_code == 200
    assert found.json() == {"people": [pairwise(client, alice)]}
    not_consented = _lookup(partner, key, "bob.contact@example.com")
    nobody = _lookup(partner, key, "nobody@example.com")
    assert not_consented.status_code == nobody.status_code == 404
    assert not_consented.content == nobody.content
    assert "example.com" not in nobody.content.decode()


def test_the_lookup_authorization(loyalty, make_client, partner, client, alice):
    loyalty_client, key = loyalty
    fill(alice, email="alice.contact@example.com", phone="+33612345678")
    grant(alice, "loyalty-programme")
    assert _lookup(partner, key, purpose="personalization").status_code == 403  # purpose lacking
    no_phone = _lookup(partner, key, "+33612345678", field="phone")  # field outside the scope
    assert no_phone.status_code == 403 and no_phone.json()["errors"][0]["param"] == "fields.phone"
    assert _lookup(partner, key, field="city").status_code == 400  # not a lookup field
    _, other_key = make_client("other", purposes=["loyalty-programme"], fields=["email"])
    assert _lookup(partner, other_key).json()["people"] != [pairwise(loyalty_client, alice)]
    partner_credential_revoke(credential=loyalty_client.credentials.get(), actor=ACTOR)
    assert _lookup(partner, key).status_code == 401
    client.defaults.pop("HTTP_AUTHORIZATION")
    client.force_login(alice)
    assert client.post("/api/v1/partner/people/lookup/", {}, content_type="application/json").status_code == 401


def test_each_client_is_held_to_its_own_rate(make_client, partner, alice):
    slow, slow_key = make_client("slow", purposes=["personalization"], fields=SCOPE, rate_limit="2/min")
    _, fast_key = make_client("fast", purposes=["personalization"], fields=SCOPE)
    url = f"/api/v1/partner/people/{pairwise(slow, alice)}/consent/personalization/"
    assert [partner(slow_key).get(url).status_code for _ in range(2)] == [200, 200]
    refused = partner(slow_key).get(url)
    assert refused.status_code == 429 and 0 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["errors"][0]["code"] == "throttled"
    assert partner(fast_key).get(url).status_code == 404  # another client, its own count


def test_a_merged_persons_id_reads_the_survivor_in_the_same_query(make_client, partner, alice, bob, staff):
    from profiles.services import profile_merge_by_staff

    client, key = make_client("shop", purposes=["personalization"], fields=SCOPE)
    old = pairwise(client, bob)
    grant(alice, "personalization")
    fill(alice, given_name="Alice")
    profile_merge_by_staff(survivor_id=alice.pk, merged_id=bob.pk, actor=Actor.staff(staff.pk))
    answer = partner(key).get(_person_url(old))
    assert answer.status_code == 200 and answer.json()["fields"]["given_name"]["value"] == "Alice"
