"""The rights API through HTTP: the person's requests, the staff queue and its steps, and every
route's answer to an anonymous caller, the person, another person and staff."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from rights.models import RightsRequest
from tests.rights.conftest import reauthenticate
from vault.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _schema(profile_schema):
    pass


def _ask(client, **body):
    return client.post("/api/v1/me/requests/", body, content_type="application/json")


def test_an_export_request_needs_a_recent_reauthentication(client, alice):
    client.force_login(alice)
    answer = _ask(client, kind="export")
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["code"] == "reauthentication_required"
    assert not RightsRequest.objects.exists()
    reauthenticate(client, alice)
    answer = _ask(client, kind="export")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["kind"] == "export"
    assert body["verification"] == "reauthentication"
    assert body["status"] in ("completed", "in_progress", "verified")


def test_a_person_with_a_second_factor_must_use_it(client, alice):
    from tests.factories import add_totp

    add_totp(alice)
    client.force_login(alice)
    reauthenticate(client, alice)
    answer = _ask(client, kind="erasure", confirm=True)
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["code"] == "mfa_required"
    reauthenticate(client, alice, method="mfa")
    answer = _ask(client, kind="erasure", confirm=True)
    assert answer.status_code == 201
    assert answer.json()["verification"] == "reauthentication_mfa"


def test_deadline_is_one_calendar_month(signed_in, alice):
    client = signed_in(alice)
    body = _ask(client, kind="restriction").json()
    made = RightsRequest.objects.get(pk=body["id"])
    assert made.due_at.month % 12 == (made.received_at.month % 12) + 1 or made.due_at.month == 1
    assert timedelta(days=28) <= made.due_at - made.received_at <= timedelta(days=31)


def test_erasure_needs_explicit_confirmation_and_one_at_a_time(signed_in, alice):
    client = signed_in(alice)
    answer = _ask(client, kind="erasure")
    assert answer.status_code == 400
    assert answer.json()["errors"][0] == {
        "code": "confirmation_required",
        "message": answer.json()["errors"][0]["message"],
        "param": "confirm",
    }
    first = _ask(client, kind="erasure", confirm=True)
    assert first.status_code == 201
    assert first.json()["grace_ends_at"]
    second = _ask(client, kind="erasure", confirm=True)
    assert second.status_code == 409
    assert second.json()["errors"][0]["code"] == "erasure_pending"
    assert RightsRequest.objects.filter(kind="erasure").count() == 1


def test_cancel_within_the_grace_period_and_not_after(signed_in, alice):
    client = signed_in(alice)
    made = _ask(client, kind="erasure", confirm=True).json()
    answer = client.post(f"/api/v1/me/requests/{made['id']}/cancel/")
    assert answer.status_code == 200
    assert answer.json()["status"] == "cancelled"
    again = _ask(client, kind="erasure", confirm=True).json()
    RightsRequest.objects.filter(pk=again["id"]).update(grace_ends_at=timezone.now() - timedelta(seconds=1))
    late = client.post(f"/api/v1/me/requests/{again['id']}/cancel/")
    assert late.status_code == 409
    assert late.json()["errors"][0]["code"] == "grace_period_over"


def test_bad_kinds_and_shapes_are_400_naming_the_field(signed_in, alice):
    client = signed_in(alice)
    answer = _ask(client, kind="everything")
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["param"] == "kind"
    answer = _ask(client, kind="objection", purposes=["email-marketing"])
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == "nothing_to_object_to"
    answer = _ask(client, kind="rectification", values={"no-such-field": "x"})
    assert answer.status_code == 400
    assert not RightsRequest.objects.exists()


def test_restriction_is_shown_and_lifted(signed_in, alice):
    client = signed_in(alice)
    assert client.get("/api/v1/me/restriction/").json() == {"restricted": False}
    assert _ask(client, kind="restriction").json()["status"] == "completed"
    assert client.get("/api/v1/me/restriction/").json() == {"restricted": True}
    assert client.delete("/api/v1/me/restriction/").json() == {"restricted": False}
    assert client.get("/api/v1/me/restriction/").json() == {"restricted": False}


def test_objection_to_a_legitimate_interest_purpose_is_in_the_ledger(signed_in, alice):
    from consent.selectors import consent_is_granted
    from tests.factories import PurposeFactory

    PurposeFactory(slug="product-analytics", legal_basis="legitimate_interest")
    assert consent_is_granted(subject_id=alice.pk, purpose="product-analytics")
    client = signed_in(alice)
    answer = _ask(client, kind="objection", purposes=["product-analytics"])
    assert answer.status_code == 201, answer.json()
    assert answer.json()["status"] == "completed"
    assert not consent_is_granted(subject_id=alice.pk, purpose="product-analytics")


def test_do_not_sell_withdraws_every_sale_and_sharing_purpose_with_receipts(signed_in, alice):
    from consent.selectors import consent_is_granted
    from tests.factories import grant

    grant(alice, "advertising-partners", "analytics")
    client = signed_in(alice)
    answer = client.post("/api/v1/me/opt-outs/sale-sharing/")
    assert answer.status_code == 200
    assert answer.json() == {"recorded": ["advertising-partners"]}
    assert not consent_is_granted(subject_id=alice.pk, purpose="advertising-partners")
    assert consent_is_granted(subject_id=alice.pk, purpose="analytics")
    history = client.get("/api/v1/consent/history/").json()
    withdrawn = [e for e in history["results"] if e["event_type"] == "withdraw"]
    assert withdrawn and client.get(f"/api/v1/consent/receipts/{withdrawn[0]['id']}/").status_code == 200
    assert client.post("/api/v1/me/opt-outs/sale-sharing/").json() == {"recorded": []}


def test_limit_sensitive_withdraws_purposes_special_category_fields_serve(signed_in, alice):
    from consent.selectors import consent_is_granted
    from profiles.gate import Actor
    from profiles.services import field_definition_create
    from tests.factories import grant

    field_definition_create(
        key="health_notes",
        actor=Actor.system("test"),
        purposes=["personalization"],
        label="Health notes",
        field_type="text",
        category="preference",
        is_special_category=True,
        retention_days=30,
        allowed_sources=["self_service"],
    )
    grant(alice, "personalization", "analytics")
    client = signed_in(alice)
    assert client.post("/api/v1/me/opt-outs/sensitive/").json() == {"recorded": ["personalization"]}
    assert not consent_is_granted(subject_id=alice.pk, purpose="personalization")
    assert consent_is_granted(subject_id=alice.pk, purpose="analytics")


# --- Staff ---------------------------------------------------------------------------------------
def test_staff_queue_sorted_by_deadline_with_flags(client, rights_staff, alice, bob, signed_in):
    signed_in(alice)
    _ask(client, kind="restriction")
    made = _ask(client, kind="erasure", confirm=True).json()
    RightsRequest.objects.filter(pk=made["id"]).update(due_at=timezone.now() - timedelta(days=1))
    client.force_login(rights_staff)
    body = client.get("/api/v1/requests/").json()
    assert [r["id"] for r in body["results"]] == [made["id"]]  # restriction is closed (completed)
    assert body["results"][0]["overdue"] is True
    assert body["results"][0]["subject"] == str(alice.pk)
    everything = client.get("/api/v1/requests/?include_closed=true").json()
    assert len(everything["results"]) == 2


def test_staff_steps_are_audited(client, rights_staff, alice, signed_in):
    signed_in(alice)
    made = _ask(client, kind="erasure", confirm=True).json()
    client.force_login(rights_staff)
    url = f"/api/v1/requests/{made['id']}"
    extended = client.post(f"{url}/extend/", {"months": 2, "reason": "Legal review"}, content_type="application/json")
    assert extended.status_code == 200, extended.json()
    assert extended.json()["status"] == "extended"
    assert extended.json()["extension_reason"] == "Legal review"
    too_long = client.post(f"{url}/extend/", {"months": 3, "reason": "x"}, content_type="application/json")
    assert too_long.status_code == 400
    held = client.post(f"{url}/hold/", {"reason": "Litigation"}, content_type="application/json")
    assert held.json()["legal_hold"] is True
    assert client.post(f"{url}/release/").json()["legal_hold"] is False
    no_reason = client.post(f"{url}/reject/", {"reason": ""}, content_type="application/json")
    assert no_reason.status_code == 400
    rejected = client.post(f"{url}/reject/", {"reason": "Identity unclear"}, content_type="application/json")
    assert rejected.json()["status"] == "rejected"
    closed = client.post(f"{url}/extend/", {"months": 1, "reason": "x"}, content_type="application/json")
    assert closed.status_code == 409
    actions = set(AuditEntry.objects.filter(action__startswith="rights.").values_list("action", flat=True))
    assert {
        "rights.receive",
        "rights.verify",
        "rights.extend",
        "rights.hold",
        "rights.hold_lift",
        "rights.reject",
    } <= actions


def test_offline_request_verified_by_staff_with_a_note(client, rights_staff, alice):
    client.force_login(rights_staff)
    made = client.post(
        "/api/v1/requests/",
        {"subject": str(alice.pk), "kind": "erasure", "confirm": True},
        content_type="application/json",
    )
    assert made.status_code == 201, made.json()
    assert made.json()["status"] == "received"
    assert made.json()["grace_ends_at"] is None
    url = f"/api/v1/requests/{made.json()['id']}/verify/"
    assert client.post(url, {"note": ""}, content_type="application/json").status_code == 400
    verified = client.post(url, {"note": "Called back on the number on file"}, content_type="application/json")
    assert verified.json()["status"] == "verified"
    assert verified.json()["verification"] == "staff"
    assert verified.json()["grace_ends_at"]
    stored = RightsRequest.objects.get(pk=made.json()["id"])
    assert b"Called back" not in stored.verification_note.ciphertext


def test_staff_rectification_applies_the_sealed_value(client, rights_staff, alice, signed_in):
    from profiles.gate import RIGHTS_PURPOSE, Actor, profile_read
    from profiles.services import field_definition_update

    field_definition_update(key="birth_date", actor=Actor.system("test"), person_can_edit=False)
    person = signed_in(alice)
    made = _ask(person, kind="rectification", values={"birth_date": "1990-04-01"})
    assert made.status_code == 201, made.json()
    bad = _ask(person, kind="rectification", values={"birth_date": "not a date"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["param"] == "birth_date"
    client.force_login(rights_staff)
    done = client.post(f"/api/v1/requests/{made.json()['id']}/complete/")
    assert done.status_code == 200, done.json()
    assert done.json()["status"] == "completed"
    values = profile_read(
        subject_id=alice.pk, fields=["birth_date"], purpose=RIGHTS_PURPOSE, actor=Actor.person(alice.pk)
    )
    assert str(values["birth_date"].value) == "1990-04-01"


def test_an_editable_field_is_corrected_by_the_person_not_by_request(signed_in, alice):
    client = signed_in(alice)
    answer = _ask(client, kind="rectification", values={"given_name": "Alicia"})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == "field_editable"


def test_offline_request_about_an_unknown_or_erased_person_is_refused(client, rights_staff):
    client.force_login(rights_staff)
    answer = client.post(
        "/api/v1/requests/", {"subject": str(uuid.uuid4()), "kind": "access"}, content_type="application/json"
    )
    assert answer.status_code == 410
    assert answer.json()["errors"][0]["code"] == "person_erased"


# --- Who may call what ---------------------------------------------------------------------------
PERSON_ROUTES = [
    ("get", "/api/v1/me/requests/"),
    ("post", "/api/v1/me/requests/"),
    ("get", "/api/v1/me/requests/{id}/"),
    ("post", "/api/v1/me/requests/{id}/cancel/"),
    ("get", "/api/v1/me/requests/{id}/export/"),
    ("get", "/api/v1/me/restriction/"),
    ("delete", "/api/v1/me/restriction/"),
    ("post", "/api/v1/me/opt-outs/sale-sharing/"),
    ("post", "/api/v1/me/opt-outs/sensitive/"),
]
STAFF_ROUTES = [
    ("get", "/api/v1/requests/"),
    ("post", "/api/v1/requests/"),
    ("get", "/api/v1/requests/{id}/"),
    *(
        ("post", f"/api/v1/requests/{{id}}/{step}/")
        for step in ("verify", "extend", "reject", "complete", "hold", "release", "lift")
    ),
]


@pytest.fixture
def alices_request(alice):
    from profiles.gate import Actor
    from rights.services import rights_request_submit

    return rights_request_submit(
        subject_id=alice.pk,
        kind="access",
        channel="portal",
        verification="reauthentication",
        actor=Actor.person(alice.pk),
    )


@pytest.mark.parametrize(("method", "route"), PERSON_ROUTES + STAFF_ROUTES)
def test_anonymous_callers_get_401(client, method, route, alices_request):
    answer = getattr(client, method)(route.format(id=alices_request.pk), content_type="application/json")
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["code"] == "not_authenticated"


@pytest.mark.parametrize(("method", "route"), [r for r in PERSON_ROUTES if "{id}" in r[1]])
def test_another_person_never_reaches_alices_request(signed_in, bob, method, route, alices_request):
    client = signed_in(bob)
    answer = getattr(client, method)(route.format(id=alices_request.pk), content_type="application/json")
    assert answer.status_code == 404
    assert str(alices_request.pk) not in answer.content.decode()


@pytest.mark.parametrize(("method", "route"), STAFF_ROUTES)
def test_people_and_staff_without_the_permission_get_403(client, alice, staff, method, route, alices_request):
    for caller in (alice, staff):
        client.force_login(caller)
        answer = getattr(client, method)(route.format(id=alices_request.pk), {}, content_type="application/json")
        assert answer.status_code == 403, (caller, route)
    assert RightsRequest.objects.get(pk=alices_request.pk).status == alices_request.status


@pytest.mark.parametrize(("method", "route"), [r for r in STAFF_ROUTES if "{id}" in r[1]])
def test_staff_steps_on_an_unknown_request_are_404(client, rights_staff, method, route):
    client.force_login(rights_staff)
    answer = getattr(client, method)(route.format(id=uuid.uuid4()), {}, content_type="application/json")
    assert answer.status_code == 404


def test_staff_see_the_person_route_as_themselves_only(client, rights_staff, alices_request):
    client.force_login(rights_staff)
    assert client.get("/api/v1/me/requests/").json()["count"] == 0
    assert client.get(f"/api/v1/me/requests/{alices_request.pk}/").status_code == 404


def test_the_export_download_by_api(client, alice, bob, django_capture_on_commit_callbacks):
    client.force_login(alice)
    reauthenticate(client, alice)
    with django_capture_on_commit_callbacks(execute=True):
        made = _ask(client, kind="export").json()
    detail = client.get(f"/api/v1/me/requests/{made['id']}/").json()
    assert detail["status"] == "completed"
    url = detail["export"]["download"]
    assert url == f"/api/v1/me/requests/{made['id']}/export/"
    answer = client.get(url)
    assert answer.status_code == 200 and answer.content[:2] == b"PK"
    import hashlib

    assert hashlib.sha256(answer.content).hexdigest() == detail["export"]["sha256"]

    client.force_login(bob)
    reauthenticate(client, bob)
    assert client.get(url).status_code == 404

    client.force_login(alice)  # signed in, but not recently
    stale = client.get(url)
    assert stale.status_code == 403 and stale.json()["errors"][0]["code"] == "reauthentication_required"

    reauthenticate(client, alice)
    RightsRequest.objects.get(pk=made["id"]).bundle.__class__.objects.update(expires_at=timezone.now())
    expired = client.get(url)
    assert expired.status_code == 410 and expired.json()["errors"][0]["code"] == "export_expired"


def test_listing_requests_takes_the_same_queries_for_one_export_or_five(
    signed_in, alice, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = signed_in(alice)
    with django_capture_on_commit_callbacks(execute=True):
        _ask(client, kind="export")
    with CaptureQueriesContext(connection) as one:
        client.get("/api/v1/me/requests/")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(4):
            _ask(client, kind="export")
    with CaptureQueriesContext(connection) as five:
        body = client.get("/api/v1/me/requests/").json()
    assert body["count"] == 5 and all(item["export"] for item in body["results"])
    assert len(five) == len(one), "no query per request for its export bundle"
