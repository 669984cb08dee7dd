"""Audience export: a segment's members who still consent, with the permitted fields, as CSV or
JSON Lines, streamed page by page with a signed cursor, audited per person and per page."""

import csv
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from consent.models import Method
from consent.services import consent_withdraw
from partners.models import Segment, SegmentExport
from partners.services import partner_client_update, partner_credential_revoke
from tests.factories import UserFactory, fill, grant
from tests.partners.conftest import ACTOR, pairwise
from vault.audit import audit_pseudonym_for, audit_verify
from vault.audit.selectors import audit_entries_about
from vault.models import AuditEntry, AuditEntrySubject

pytestmark = pytest.mark.django_db

FIELDS = ["given_name", "country", "clothing_size", "interests", "family_name"]
URL = "/api/v1/partner/segments/"
NL = {"all": [{"field": "country", "op": "eq", "value": "NL"}]}


@pytest.fixture
def shop(make_client):
    return make_client("shop", purposes=["personalization", "analytics"], fields=FIELDS)


@pytest.fixture
def audience(shop, partner, alice, bob, django_capture_on_commit_callbacks):
    """alice and bob, Dutch and consenting to personalization, in a ready segment."""
    _, key = shop
    for person, name in ((alice, "Alice"), (bob, "Bob")):
        grant(person, "personalization")
        fill(person, given_name=name, country="NL", interests=["running", "yoga"], family_name="Jansen")
    with django_capture_on_commit_callbacks(execute=True):
        answer = partner(key).post(
            URL, {"name": "NL", "purpose": "personalization", "definition": NL}, content_type="application/json"
        )
    assert answer.status_code == 201
    return answer.json()["id"]


def _export(partner, key, segment_id, query=""):
    answer = partner(key).get(f"{URL}{segment_id}/export/{query}")
    body = b"".join(answer.streaming_content).decode() if answer.status_code == 200 else None
    return answer, body


def test_csv_export_carries_the_permitted_fields(shop, partner, audience, alice, bob):
    client, key = shop
    answer, body = _export(partner, key, audience, "?format=csv")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body)))
    # family_name is in scope but does not serve personalization: not carried.
    assert list(rows[0]) == ["person", "country", "given_name", "clothing_size", "interests"]
    by_person = {row["person"]: row for row in rows}
    assert by_person[pairwise(client, alice)]["given_name"] == "Alice"
    assert by_person[pairwise(client, bob)]["interests"] == "running;yoga"
    assert "X-Next-Cursor" not in answer


def test_jsonl_export_and_cursor_pages(shop, partner, audience, alice, bob):
    client, key = shop
    first, body = _export(partner, key, audience, "?format=jsonl&limit=1&fields=given_name,interests")
    assert first["Content-Type"].startswith("application/jsonl")
    (line,) = body.splitlines()
    cursor = first["X-Next-Cursor"]
    assert 'rel="next"' in first["Link"]
    _, body2 = _export(partner, key, audience, f"?format=jsonl&limit=1&fields=given_name,interests&cursor={cursor}")
    (line2,) = body2.splitlines()
    people = {json.loads(line)["person"], json.loads(line2)["person"]}
    assert people == {pairwise(client, alice), pairwise(client, bob)}
    assert set(json.loads(line)) == {"person", "given_name", "interests"}
    assert isinstance(json.loads(line)["interests"], list)
    # The last page may carry a cursor to an empty page; a tampered cursor is refused.
    answer, _ = _export(partner, key, audience, f"?cursor={cursor}x")
    assert answer.status_code == 400 and answer.json()["errors"][0]["param"] == "cursor"


def test_every_export_is_audited_with_its_size(shop, partner, audience, alice, bob):
    answer, _ = _export(partner, key := shop[1], audience)
    request_id = answer["X-Request-ID"]
    log = SegmentExport.objects.get()
    assert (log.rows, log.request_id, log.purpose) == (2, request_id, "personalization")
    assert log.bytes > 0
    # The batch read is one entry naming both people (AuditEntrySubject), and the page one more.
    (batch,) = AuditEntry.objects.filter(request_id=request_id, action="profile.read", actor_id="shop")
    named = AuditEntrySubject.objects.filter(entry_seq=batch.seq).values_list("subject_pseudonym", flat=True)
    assert set(named) == {audit_pseudonym_for(alice.pk), audit_pseudonym_for(bob.pk)}
    assert AuditEntry.objects.filter(request_id=request_id, action="partners.audience_export").count() == 1
    assert audit_verify().ok
    # The person's "who accessed my data" finds the export.
    mine = audit_entries_about(subject_id=alice.pk).object_list
    assert any(e.actor_name == "shop" and e.purpose == "personalization" and "given_name" in e.fields for e in mine)
    assert key


def test_consent_withdrawn_after_computation_is_not_exported(shop, partner, audience, alice, bob):
    client, key = shop
    consent_withdraw(subject_id=alice.pk, purpose="personalization", method=Method.WEB_FORM)
    _, body = _export(partner, key, audience, "?format=jsonl")
    people = {json.loads(line)["person"] for line in body.splitlines()}
    assert people == {pairwise(client, bob)}
    assert SegmentExport.objects.get().rows == 1


def test_a_stale_cursor_after_a_refresh_is_409(shop, partner, audience, django_capture_on_commit_callbacks):
    _, key = shop
    first, _ = _export(partner, key, audience, "?limit=1")
    with django_capture_on_commit_callbacks(execute=True):
        partner(key).post(f"{URL}{audience}/refresh/")
    answer, _ = _export(partner, key, audience, f"?limit=1&cursor={first['X-Next-Cursor']}")
    assert answer.status_code == 409 and answer.json()["errors"][0]["code"] == "stale_cursor"


def test_export_authorization(make_client, shop, partner, audience, alice, client):
    shop_client, key = shop
    # Without the purpose: 403.
    answer, _ = _export(partner, key, audience, "?purpose=loyalty-programme")
    assert answer.status_code == 403 and answer.json()["errors"][0]["code"] == "purpose_not_granted"
    # A field out of scope, or not serving the purpose: 403 naming it, never silently absent.
    for asked in ("birth_date", "family_name"):
        answer, _ = _export(partner, key, audience, f"?fields=given_name,{asked}")
        assert answer.status_code == 403
        assert answer.json()["errors"][0]["code"] == "fields_not_granted"
        assert asked in answer.json()["errors"][0]["message"]
    # Another purpose of the client: only the fields serving it (analytics: country).
    answer, body = _export(partner, key, audience, "?purpose=analytics")
    assert answer.status_code == 200 and body.splitlines() == ["person,country"]  # nobody consents to analytics
    # Another client: 404, and a cursor of another client's is refused.
    _, other_key = make_client("other", purposes=["personalization"], fields=FIELDS)
    assert _export(partner, other_key, audience)[0].status_code == 404
    # A bad format: 400.
    assert _export(partner, key, audience, "?format=xml")[0].status_code == 400
    # A person's session: 401; a revoked credential: 401.
    client.defaults.pop("HTTP_AUTHORIZATION", None)
    client.force_login(alice)
    assert client.get(f"{URL}{audience}/export/").status_code == 401
    client.logout()
    partner_credential_revoke(credential=shop_client.credentials.get(), actor=ACTOR)
    assert _export(partner, key, audience)[0].status_code == 401
    assert not SegmentExport.objects.filter(rows__gt=0).exclude(purpose="analytics").exists()


def test_fields_taken_away_are_not_exported(shop, partner, audience):
    client, key = shop
    partner_client_update(client=client, actor=ACTOR, fields=["country"])
    _, body = _export(partner, key, audience)
    assert body.splitlines()[0] == "person,country"


def test_an_uncomputed_segment_is_not_exportable(shop, partner):
    client, key = shop
    segment = Segment.objects.create(client=client, name="x", purpose="personalization", definition=NL)
    answer, _ = _export(partner, key, segment.pk)
    assert answer.status_code == 409 and answer.json()["errors"][0]["code"] == "segment_not_ready"


def test_a_large_export_pages_and_batches(shop, partner, settings, django_capture_on_commit_callbacks):
    settings.PARTNERS_EXPORT_BATCH = 2
    settings.PARTNERS_SEGMENT_BATCH = 2
    client, key = shop
    people: list[User] = [UserFactory.create() for _ in range(5)]
    for person in people:
        grant(person, "personalization")
        fill(person, country="NL", given_name="P")
    with django_capture_on_commit_callbacks(execute=True):
        segment_id = (
            partner(key)
            .post(URL, {"name": "NL", "purpose": "personalization", "definition": NL}, content_type="application/json")
            .json()["id"]
        )
    assert partner(key).get(f"{URL}{segment_id}/").json()["count"] == 5
    seen, cursor, pages = [], "", 0
    while True:
        answer, body = _export(partner, key, segment_id, f"?format=jsonl&limit=3{cursor}")
        seen += [json.loads(line)["person"] for line in body.splitlines()]
        pages += 1
        if "X-Next-Cursor" not in answer:
            break
        cursor = f"&cursor={answer['X-Next-Cursor']}"
    assert pages == 2
    assert sorted(seen) == sorted(pairwise(client, p) for p in people)


def test_batches_read_in_worker_threads_export_the_same(
    committed_db, profile_schema, make_client, partner, settings, django_capture_on_commit_callbacks
):
    """With PARTNERS_EXPORT_WORKERS > 1 the batches are read on connections of their own (so the
    data must be committed, as it is in production): same rows, same audit, in order."""
    settings.PARTNERS_EXPORT_WORKERS = 3
    settings.PARTNERS_EXPORT_BATCH = 2
    client, key = make_client("shop", purposes=["personalization"], fields=FIELDS)
    people = [UserFactory.create() for _ in range(4)]
    for n, person in enumerate(people):
        grant(person, "personalization")
        fill(person, country="NL", given_name=f"P{n}")
    with django_capture_on_commit_callbacks(execute=True):
        segment_id = (
            partner(key)
            .post(URL, {"name": "NL", "purpose": "personalization", "definition": NL}, content_type="application/json")
            .json()["id"]
        )
    answer, body = _export(partner, key, segment_id, "?format=jsonl&fields=given_name")
    got = [json.loads(line) for line in body.splitlines()]
    assert sorted(row["person"] for row in got) == sorted(pairwise(client, p) for p in people)
    names = {pairwise(client, p): f"P{n}" for n, p in enumerate(people)}
    assert all(row["given_name"] == names[row["person"]] for row in got)
    request_id = answer["X-Request-ID"]
    batches = AuditEntry.objects.filter(request_id=request_id, action="profile.read")
    assert batches.count() == 2, "one entry per batch, appended from two threads"
    named = AuditEntrySubject.objects.filter(entry_seq__in=batches.values("seq"))
    assert set(named.values_list("subject_pseudonym", flat=True)) == {audit_pseudonym_for(p.pk) for p in people}
    assert SegmentExport.objects.get(request_id=request_id).rows == 4
    assert audit_verify().ok


def test_the_access_log_page_shows_a_batch_read_that_named_the_person(shop, partner, audience, alice, bob):
    """Through the portal: alice's "who accessed my data" lists the export's batch entry; carol,
    not in the segment, sees nothing of it; no pseudonym is shown."""
    _, key = shop
    carol = UserFactory.create(email="carol@example.com")
    answer, _ = _export(partner, key, audience)
    assert answer.status_code == 200
    (batch,) = AuditEntry.objects.filter(action="profile.read", request_id=answer["X-Request-ID"])
    assert batch.subject_pseudonym is None, "a batch entry, found through its people's rows"
    client = partner(key)
    client.defaults.pop("HTTP_AUTHORIZATION")
    client.force_login(alice)
    page = client.get("/privacy/access-log/").content.decode()
    assert "shop" in page and "Given name" in page
    assert "Dutch" not in page and "Alice" not in page, "fields, never values"
    for pseudonym in AuditEntrySubject.objects.values_list("subject_pseudonym", flat=True):
        assert str(pseudonym) not in page and pseudonym.hex not in page
    client.force_login(carol)
    assert "shop" not in client.get("/privacy/access-log/").content.decode()


def test_an_export_costs_the_same_queries_per_batch_whatever_its_size(
    shop, partner, settings, django_capture_on_commit_callbacks
):
    """The audit of a batch is one entry and one statement of rows, however many people."""
    settings.PARTNERS_EXPORT_WORKERS = 1
    _, key = shop
    people: list[User] = [UserFactory.create() for _ in range(12)]
    for person in people:
        grant(person, "personalization")
        fill(person, country="NL", given_name="P")
    with django_capture_on_commit_callbacks(execute=True):
        segment_id = (
            partner(key)
            .post(URL, {"name": "NL", "purpose": "personalization", "definition": NL}, content_type="application/json")
            .json()["id"]
        )

    before = AuditEntrySubject.objects.count()  # the segment's computation read them too

    def queries(batch: int) -> int:
        settings.PARTNERS_EXPORT_BATCH = batch
        _export(partner, key, segment_id)  # warm: pseudonyms made, caches filled
        with CaptureQueriesContext(connection) as captured:
            answer, body = _export(partner, key, segment_id)
        assert answer.status_code == 200 and len(body.splitlines()) == 13
        return len(captured)

    two, three, four, six = queries(6), queries(4), queries(3), queries(2)
    per_batch = three - two
    assert per_batch > 0
    assert four - three == per_batch and six - four == 2 * per_batch, "constant per batch, not per person"
    assert AuditEntrySubject.objects.count() - before == 12 * 8, "each person named once per export"
