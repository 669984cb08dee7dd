import re
import uuid

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from profiles.gate import Actor, profile_record_write
from profiles.models import FieldDefinition, ProfileValue, RecordKind, Source
from tests.factories import fill, grant
from vault.models import AuditEntry

pytestmark = pytest.mark.usefixtures("schema")
PROFILE = reverse("v1:my-profile")
EVENTS = reverse("v1:my-events")
DOCUMENTS = reverse("v1:my-documents")
FIELDS = reverse("v1:profile-fields")


def client_for(user=None):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def _fields(response):
    return {item["key"]: item for item in response.json()["fields"]}


def test_the_person_sees_every_visible_field_with_provenance(alice):
    fill(alice, given_name="Ada", interests=["yoga"])

    response = client_for(alice).get(PROFILE)

    assert response.status_code == 200
    fields = _fields(response)
    assert fields["given_name"]["value"] == "Ada"
    assert fields["given_name"]["source"] == "self_service"
    assert fields["interests"]["value"] == ["yoga"]
    assert fields["shoe_size"]["value"] is None
    assert fields["loyalty_tier"]["can_edit"] is False
    assert AuditEntry.objects.filter(action="profile.read", purpose="data-subject-rights").exists()


def test_the_person_rectifies_and_removes_values(alice):
    fill(alice, city="Leiden", given_name="Ada")

    response = client_for(alice).patch(
        PROFILE, {"values": {"city": "Delft", "given_name": None, "birth_date": "1990-12-10"}}, format="json"
    )

    assert response.status_code == 200
    fields = _fields(response)
    assert (fields["city"]["value"], fields["given_name"]["value"], fields["birth_date"]["value"]) == (
        "Delft",
        None,
        "1990-12-10",
    )


def test_bad_values_give_one_error_per_field_and_change_nothing(alice):
    fill(alice, city="Leiden")

    response = client_for(alice).patch(
        PROFILE, {"values": {"city": "Delft", "shoe_size": 99, "birth_date": "yesterday"}}, format="json"
    )

    assert response.status_code == 400
    errors = {error["param"]: error["code"] for error in response.json()["errors"]}
    assert errors == {"shoe_size": "invalid_value", "birth_date": "invalid_value"}
    assert "yesterday" not in response.content.decode()
    assert _fields(client_for(alice).get(PROFILE))["city"]["value"] == "Leiden"


def test_fields_hidden_from_the_person_are_unknown_to_them(alice):
    FieldDefinition.objects.filter(key="lifetime_value").update(person_can_view=False)

    assert "lifetime_value" not in _fields(client_for(alice).get(PROFILE))
    response = client_for(alice).patch(PROFILE, {"values": {"lifetime_value": "1"}}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "code": "unknown_field",
        "message": "No profile field has this key.",
        "param": "lifetime_value",
    }


def test_malformed_requests_are_400s(alice):
    for body in ({}, {"values": {}}, {"values": "city=Delft"}, []):
        response = client_for(alice).patch(PROFILE, body, format="json")
        assert response.status_code == 400, body


def test_an_outsider_sees_nothing(alice, bob):
    fill(alice, given_name="Ada")
    assert client_for().get(PROFILE).status_code in (401, 403)
    assert client_for().get(EVENTS).status_code in (401, 403)
    assert "Ada" not in client_for(bob).get(PROFILE).content.decode()


def test_the_person_lists_own_events_and_documents(alice, bob):
    grant(alice, "personalization")
    grant(bob, "personalization")
    profile_record_write(
        subject_id=alice.pk,
        kind="order",
        shape=RecordKind.Shape.EVENT,
        body={"order": "A-1", "total": "59.90"},
        source=Source.PARTNER,
        source_name="shop",
        actor=Actor.partner("shop"),
    )
    profile_record_write(
        subject_id=bob.pk,
        kind="order",
        shape=RecordKind.Shape.EVENT,
        body={"order": "B-1"},
        source=Source.PARTNER,
        actor=Actor.partner("shop"),
    )
    profile_record_write(
        subject_id=alice.pk,
        kind="social_profile",
        shape=RecordKind.Shape.DOCUMENT,
        body={"likes": ["running"]},
        source=Source.SOCIAL,
        source_name="github",
        actor=Actor.system("social-import"),
    )

    events = client_for(alice).get(EVENTS).json()
    documents = client_for(alice).get(DOCUMENTS, {"kind": "social_profile"}).json()

    assert [(e["kind"], e["body"]) for e in events["results"]] == [("order", {"order": "A-1", "total": "59.90"})]
    assert [(d["kind"], d["source_name"], d["body"]) for d in documents["results"]] == [
        ("social_profile", "github", {"likes": ["running"]})
    ]


# --- The staff schema API -----------------------------------------------------------------------
NEW_FIELD = {
    "key": "favorite_store",
    "label": "Favourite store",
    "type": "choice",
    "choices": ["Amsterdam", "Berlin"],
    "category": "preference",
    "purposes": ["personalization"],
    "retention_days": 365,
    "allowed_sources": ["self_service", "partner"],
}


def test_only_staff_edit_the_schema(alice, staff):
    assert client_for().get(FIELDS).status_code in (401, 403)
    assert client_for(alice).get(FIELDS).status_code == 403
    assert client_for(alice).post(FIELDS, NEW_FIELD, format="json").status_code == 403
    assert client_for(staff).get(FIELDS).status_code == 200


def test_staff_define_change_and_deprecate_a_field(staff, alice):
    api = client_for(staff)
    created = api.post(FIELDS, NEW_FIELD, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["version"] == 1
    url = reverse("v1:profile-field", args=["favorite_store"])

    changed = api.patch(url, {"choices": ["Amsterdam", "Berlin", "Paris"], "label": "Store"}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["version"], changed.json()["label"]) == (2, "Store")

    fill(alice, favorite_store="Paris")
    deprecated = api.delete(url)
    assert deprecated.status_code == 200
    assert deprecated.json()["deprecated_at"] is not None
    assert ProfileValue.objects.filter(definition__key="favorite_store").count() == 1  # kept
    versions = FieldDefinition.objects.get(key="favorite_store").versions.values_list("version", flat=True)
    assert list(versions) == [1, 2, 3]


def test_schema_errors_name_the_attribute(staff):
    api = client_for(staff)
    cases = [
        ({**NEW_FIELD, "choices": []}, "choices"),
        ({**NEW_FIELD, "type": "colour"}, "type"),
        ({**NEW_FIELD, "purposes": ["mind-reading"]}, "purposes"),
        ({**NEW_FIELD, "key": "Favourite Store"}, "key"),
        ({**NEW_FIELD, "key": "shoe_size"}, "key"),
        ({**NEW_FIELD, "type": "json", "choices": [], "searchable": True}, "searchable"),
        ({**NEW_FIELD, "allowed_sources": []}, "allowed_sources"),
    ]
    for body, param in cases:
        response = api.post(FIELDS, body, format="json")
        assert response.status_code == 400, body
        assert response.json()["errors"][0]["param"] == param, (body, response.json())
    response = api.patch(reverse("v1:profile-field", args=["shoe_size"]), {"type": "integer"}, format="json")
    assert (response.status_code, response.json()["errors"][0]["param"]) == (400, "field_type")
    assert api.get(reverse("v1:profile-field", args=["nope"])).status_code == 404


def test_staff_schema_changes_are_audited(staff):
    client_for(staff).post(FIELDS, NEW_FIELD, format="json")
    entry = AuditEntry.objects.get(action="schema.field_create")
    assert (entry.actor_type, entry.actor_id, entry.fields) == ("staff", str(staff.pk), ["favorite_store"])


INLINE = {"versions-TOTAL_FORMS": 0, "versions-INITIAL_FORMS": 0}


def test_admin_pages_for_the_schema(client, admin_user):
    client.force_login(admin_user)
    assert client.get(reverse("admin:profiles_fielddefinition_changelist")).status_code == 200
    definition = FieldDefinition.objects.get(key="shoe_size")
    assert client.get(reverse("admin:profiles_fielddefinition_change", args=[definition.pk])).status_code == 200
    response = client.post(
        reverse("admin:profiles_fielddefinition_add"),
        {
            "key": "pet_name",
            "label": "Pet's name",
            "field_type": "text",
            "choices": "[]",
            "category": "preference",
            "index_bits": 32,
            "retention_days": 30,
            "allowed_sources": '["self_service"]',
            "person_can_view": "on",
            "person_can_edit": "on",
            "purposes": [],
            **INLINE,
        },
    )
    assert response.status_code == 302, re.findall(r"errorlist[^>]*>(.*?)</ul>", response.content.decode(), re.S)
    assert FieldDefinition.objects.get(key="pet_name").versions.count() == 1
    bad = client.post(
        reverse("admin:profiles_fielddefinition_add"),
        {
            "key": "x",
            "label": "X",
            "field_type": "choice",
            "choices": "[]",
            "category": "preference",
            "index_bits": 32,
            "retention_days": 30,
            "allowed_sources": '["self_service"]',
            **INLINE,
        },
    )
    assert bad.status_code == 200
    assert "A choice field lists its choices" in bad.content.decode()
    assert uuid.UUID(str(definition.pk))


def test_events_are_paged_and_only_the_page_is_read(alice):
    grant(alice, "personalization")
    for number in range(5):
        profile_record_write(
            subject_id=alice.pk,
            kind="product_view",
            shape=RecordKind.Shape.EVENT,
            body={"n": number},
            source=Source.PARTNER,
            actor=Actor.partner("shop"),
        )
    first = client_for(alice).get(EVENTS, {"page_size": 2}).json()
    last = client_for(alice).get(EVENTS, {"page_size": 2, "page": 3}).json()

    assert first["count"] == 5
    assert [e["body"]["n"] for e in first["results"]] == [4, 3]
    assert [e["body"]["n"] for e in last["results"]] == [0]
    reads = AuditEntry.objects.filter(action="profile.events_read").count()
    assert reads == 2  # one per page served
