"""The access and export bundle (GDPR Art. 15 and 20): what each file holds, the bundle sealed at
rest, one build per request, its owner only, expiry, and a person erased meanwhile."""

import csv
import hashlib
import io
import json
import uuid
import zipfile
from datetime import timedelta

import pytest
from allauth.socialaccount.models import SocialAccount, SocialToken
from django.db import connection
from django.utils import timezone

from profiles.gate import Actor, profile_record_write
from profiles.models import RecordKind, Source
from rights.errors import ExportExpired, RequestNotFound
from rights.export.formats import FILES
from rights.models import ExportBundle, Kind, RightsRequest, Status
from rights.services.export import export_bundle_build, export_download, export_zip_build, exports_expire
from rights.services.requests import request_record
from rights.tasks import export_build
from tests.factories import fill, grant
from vault.crypto import subject_shred
from vault.models import AuditEntry
from vault.signing import jwks, jws_verify

pytestmark = pytest.mark.usefixtures("profile_schema")


def verified_request(person, kind: str = Kind.EXPORT) -> RightsRequest:
    return request_record(
        subject_id=person.pk,
        kind=kind,
        channel="portal",
        verification="reauthentication",
        actor=Actor.person(person.pk),
    )


def open_zip(content: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(content))


def read_json(archive: zipfile.ZipFile, name: str):
    return json.loads(archive.read(name))


def read_csv(archive: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8-sig"))))


def order(person, body: dict) -> None:
    profile_record_write(
        subject_id=person.pk,
        kind="order",
        shape=RecordKind.Shape.EVENT,
        body=body,
        source=Source.PARTNER,
        source_name="shop",
        actor=Actor.partner("shop"),
    )


@pytest.fixture
def alice_data(alice):
    """Alice has filled in her profile, corrected it, consented, shopped and linked GitHub."""
    grant(alice, "personalization")
    fill(alice, given_name="Margaretha", city="Utrecht")
    fill(alice, city="Amsterdam")  # the earlier city goes to the history
    order(alice, {"order": "A-1", "total": "59.90"})
    order(alice, {"order": "A-2", "total": "=SUM(A1:A9)"})
    profile_record_write(
        subject_id=alice.pk,
        kind="social_profile",
        shape=RecordKind.Shape.DOCUMENT,
        body={"likes": ["running"]},
        source=Source.SOCIAL,
        source_name="github",
        actor=Actor.system("social-import"),
    )
    account = SocialAccount.objects.create(user=alice, provider="github", uid="4242", extra_data={"login": "maggie"})
    SocialToken.objects.create(
        account=account, token="gho_secret_access", token_secret="ghr_secret_refresh", expires_at=timezone.now()
    )
    return alice


def test_the_zip_holds_every_file_named_in_the_readme(alice_data):
    content = export_zip_build(subject_id=alice_data.pk, actor=Actor.person(alice_data.pk))
    assert open_zip(content).namelist() == [name for name, _ in FILES]
    assert open_zip(content).testzip() is None


def test_profile_json_and_csv_hold_each_value_with_its_definition_and_provenance(alice_data):
    archive = open_zip(export_zip_build(subject_id=alice_data.pk, actor=Actor.person(alice_data.pk)))

    profile = read_json(archive, "profile.json")
    values = {row["key"]: row for row in profile["values"]}
    assert profile["account"] == {"subject_id": str(alice_data.pk), "login_email": "alice@example.com"}
    given = values["given_name"]
    assert given["value"] == "Margaretha"
    assert given["label"] and given["type"] == "text" and given["category"]
    assert given["source"] == Source.SELF_SERVICE and given["legal_basis"]
    assert given["collected_at"] and given["expires_at"]
    assert "personalization" in {p["slug"] for p in given["purposes"]}
    assert values["city"]["value"] == "Amsterdam"

    table = {row["key"]: row for row in read_csv(archive, "profile.csv")}
    assert table["given_name"]["value"] == "Margaretha"
    assert "personalization" in table["given_name"]["purposes"].split("; ")


def test_history_holds_the_replaced_value(alice_data):
    archive = open_zip(export_zip_build(subject_id=alice_data.pk, actor=Actor.person(alice_data.pk)))
    earlier = read_json(archive, "history.json")["earlier_values"]
    assert [(row["key"], row["value"]) for row in earlier] == [("city", "Utrecht")]
    assert read_csv(archive, "history.csv")[0]["value"] == "Utrecht"


def test_events_and_documents_are_all_there_and_csv_defuses_formulas(alice_data):
    archive = open_zip(export_zip_build(subject_id=alice_data.pk, actor=Actor.person(alice_data.pk)))
    events = read_json(archive, "events.json")["events"]
    assert sorted(e["body"]["order"] for e in events) == ["A-1", "A-2"]
    assert {e["kind"] for e in events} == {"order"} and all(e["source_name"] == "shop" for e in events)
    documents = read_json(archive, "documents.json")["documents"]
    assert [d["body"] for d in documents] == [{"likes": ["running"]}]

    rows = read_csv(archive, "events.csv")
    assert len(rows) == 2
    # JSON keeps the exact value; in the CSV a cell a spreadsheet would run as a formula is text.
    assert any(e["body"]["total"] == "=SUM(A1:A9)" for e in events)
    assert all(not row["body"].startswith("=") for row in rows)


def test_csv_cells_that_start_a_formula_are_written_as_text(alice):
    fill(alice, given_name="=HYPERLINK(1)")
    archive = open_zip(export_zip_build(subject_id=alice.pk, actor=Actor.person(alice.pk)))
    assert read_csv(archive, "profile.csv")[0]["value"] == "'=HYPERLINK(1)"
    assert read_json(archive, "profile.json")["values"][0]["value"] == "=HYPERLINK(1)"


def test_consents_carry_receipts_whose_jws_verifies(alice_data):
    archive = open_zip(export_zip_build(subject_id=alice_data.pk, actor=Actor.person(alice_data.pk)))
    consents = read_json(archive, "consents.json")["consents"]
    [granted] = [c for c in consents if c["purpose"] == "personalization" and c["event"] == "grant"]
    assert granted["policy_sha256"] and granted["policy_version"]
    assert jws_verify(granted["receipt_jws"], jwks()) == granted["receipt"]
    assert granted["receipt"]["piiPrincipalId"] == str(alice_data.pk)
    assert any(row["purpose"] == "personalization" for row in read_csv(archive, "consents.csv"))


def test_connected_accounts_show_provider_data_and_that_tokens_are_held_never_their_value(alice_data):
    content = export_zip_build(subject_id=alice_data.pk, actor=Actor.person(alice_data.pk))
    archive = open_zip(content)
    [github] = read_json(archive, "connected_accounts.json")["accounts"]
    assert github["provider"] == "github" and github["provider_data"] == {"login": "maggie"}
    [token] = github["tokens"]
    assert token["held"] and token["access_token_held"] and token["refresh_token_held"] and token["expires_at"]
    for name in archive.namelist():
        text = archive.read(name).decode("utf-8")
        assert "gho_secret_access" not in text and "ghr_secret_refresh" not in text


def test_the_access_log_shows_who_read_the_data(alice_data):
    from profiles.gate import profile_read

    profile_read(subject_id=alice_data.pk, fields=["city"], purpose="personalization", actor=Actor.partner("shop"))
    archive = open_zip(export_zip_build(subject_id=alice_data.pk, actor=Actor.person(alice_data.pk)))
    entries = read_json(archive, "access_log.json")["entries"]
    shop_read = [e for e in entries if e["action"] == "profile.read" and e["actor_name"] == "shop"]
    assert shop_read and shop_read[0]["actor"] == "partner" and shop_read[0]["fields"] == ["city"]
    assert any(e["actor"] == "you" for e in entries)
    assert any(row["actor_name"] == "shop" and row["fields"] == "city" for row in read_csv(archive, "access_log.csv"))
    assert "Margaretha" not in archive.read("access_log.json").decode()


def test_requests_list_kind_and_status_but_not_sealed_details(alice):
    request_record(
        subject_id=alice.pk,
        kind=Kind.RECTIFICATION,
        channel="offline",
        verification="",
        actor=Actor.staff("7"),
        details={"field": "city", "value": "Secretville"},
        note="Passport seen at the desk",
    )
    archive = open_zip(export_zip_build(subject_id=alice.pk, actor=Actor.person(alice.pk)))
    [request] = read_json(archive, "requests.json")["requests"]
    assert request["kind"] == "rectification" and request["status"] == "received" and request["due_at"]
    text = archive.read("requests.json").decode()
    assert "Secretville" not in text and "Passport" not in text and "details" not in request


def test_readme_names_the_controller_the_files_and_escapes(alice, settings):
    settings.VAULT_CONTROLLER = {**settings.VAULT_CONTROLLER, "name": "<script>alert(1)</script> & Co"}
    archive = open_zip(export_zip_build(subject_id=alice.pk, actor=Actor.person(alice.pk)))
    readme = archive.read("README.html").decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in readme and "<script>" not in readme
    assert "/.well-known/jwks.json" in readme
    for name, _ in FILES:
        assert f"<code>{name}</code>" in readme


def test_progress_rises_from_0_to_100(alice_data):
    seen: list[int] = []
    export_zip_build(subject_id=alice_data.pk, actor=Actor.person(alice_data.pk), on_progress=seen.append)
    assert seen[0] == 0 and seen[-1] == 100 and seen == sorted(seen)


def test_the_build_stores_the_bundle_sealed_and_completes_the_request(alice_data):
    request = verified_request(alice_data)

    bundle = export_bundle_build(request_id=request.pk)

    request.refresh_from_db()
    assert request.status == Status.COMPLETED and request.progress == 100
    assert bundle is not None and bundle.request_id == request.pk and bundle.subject_id == alice_data.pk
    ttl = bundle.expires_at - timezone.now()
    assert timedelta(hours=71) < ttl <= timedelta(hours=72)
    actions = list(AuditEntry.objects.filter(action__startswith="rights.").values_list("action", flat=True))
    assert "rights.start" in actions and "rights.complete" in actions

    content, downloaded = export_download(
        subject_id=alice_data.pk, bundle_id=bundle.pk, actor=Actor.person(alice_data.pk)
    )
    assert len(content) == downloaded.size

    assert hashlib.sha256(content).hexdigest() == downloaded.sha256
    assert read_json(open_zip(content), "profile.json")["values"]

    # At rest, the row is ciphertext: not the zip (whose file names a zip stores in clear).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT content FROM rights_exportbundle WHERE id = %s",
            [bundle.pk.hex if connection.vendor == "sqlite" else bundle.pk],
        )
        (raw,) = cursor.fetchone()
    raw = bytes(raw)
    assert b"profile.json" not in raw and b"Margaretha" not in raw and not raw.startswith(b"PK")
    assert content not in raw


def test_the_ttl_comes_from_the_setting(alice, settings):
    settings.RIGHTS_EXPORT_TTL_HOURS = 1
    bundle = export_bundle_build(request_id=verified_request(alice).pk)
    assert bundle.expires_at - timezone.now() <= timedelta(hours=1)


def test_building_twice_builds_once(alice_data, django_assert_max_num_queries):
    request = verified_request(alice_data, kind=Kind.ACCESS)
    first = export_bundle_build(request_id=request.pk)
    starts = AuditEntry.objects.filter(action="rights.start").count()

    again = export_bundle_build(request_id=request.pk)

    assert again == first and ExportBundle.objects.count() == 1
    assert AuditEntry.objects.filter(action="rights.start").count() == starts == 1


def test_the_task_builds_through_the_service(alice):
    request = verified_request(alice)
    bundle_id = export_build.delay(str(request.pk)).get()
    assert ExportBundle.objects.get().pk.hex == bundle_id.replace("-", "")
    assert export_build.delay(str(request.pk)).get() == bundle_id  # delivered twice: built once


def test_only_verified_or_extended_access_and_export_requests_are_built(alice):
    received = request_record(
        subject_id=alice.pk, kind=Kind.EXPORT, channel="offline", verification="", actor=Actor.staff("7")
    )
    restriction = verified_request(alice, kind=Kind.RESTRICTION)
    assert export_bundle_build(request_id=received.pk) is None
    assert export_bundle_build(request_id=restriction.pk) is None
    assert not ExportBundle.objects.exists()
    received.refresh_from_db()
    assert received.status == Status.RECEIVED

    RightsRequest.objects.filter(pk=received.pk).update(status=Status.EXTENDED)
    assert export_bundle_build(request_id=received.pk) is not None


def test_a_request_taken_by_another_worker_is_left_to_it(alice):
    request = verified_request(alice)
    RightsRequest.objects.filter(pk=request.pk).update(status=Status.IN_PROGRESS, updated_at=timezone.now())
    assert export_bundle_build(request_id=request.pk) is None
    assert not ExportBundle.objects.exists()


def test_a_build_whose_worker_died_is_claimed_again(alice, settings):
    request = verified_request(alice)
    long_ago = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 120)
    RightsRequest.objects.filter(pk=request.pk).update(status=Status.IN_PROGRESS, updated_at=long_ago)
    assert export_bundle_build(request_id=request.pk) is not None


def test_progress_is_recorded_in_a_few_updates(alice_data, django_assert_max_num_queries, monkeypatch):
    from rights.services import export

    request = verified_request(alice_data)
    seen: list[int] = []
    recorder = export._progress_recorder

    def watching(req):
        record = recorder(req)

        def both(percent: int) -> None:
            record(percent)
            seen.append(RightsRequest.objects.get(pk=req.pk).progress)

        return both

    monkeypatch.setattr(export, "_progress_recorder", watching)
    export_bundle_build(request_id=request.pk)
    assert 0 < max(seen) < 100 and len(set(seen)) <= 11


def test_a_failed_build_gives_the_request_back_for_the_retry(alice, monkeypatch):
    from rights.services import export

    request = verified_request(alice)

    def broken(**kwargs):
        raise ConnectionError("database went away")

    monkeypatch.setattr(export, "export_zip_build", broken)
    with pytest.raises(ConnectionError):
        export_bundle_build(request_id=request.pk)
    request.refresh_from_db()
    assert request.status == Status.VERIFIED and not ExportBundle.objects.exists()
    monkeypatch.undo()
    assert export_bundle_build(request_id=request.pk) is not None


def test_a_person_erased_before_the_build_ends_it_quietly(alice):
    fill(alice, given_name="Margaretha")
    request = verified_request(alice)
    subject_shred(alice.pk)
    assert export_bundle_build(request_id=request.pk) is None
    assert not ExportBundle.objects.exists()


def test_a_person_erased_during_the_build_ends_it_quietly(alice, monkeypatch):
    from rights.services import export

    fill(alice, given_name="Margaretha")
    request = verified_request(alice)
    build = export.export_zip_build

    def erased_midway(**kwargs):
        subject_shred(alice.pk)
        return build(**kwargs)

    monkeypatch.setattr(export, "export_zip_build", erased_midway)
    assert export_bundle_build(request_id=request.pk) is None
    assert not ExportBundle.objects.exists()


def test_another_persons_bundle_is_not_found_as_if_it_did_not_exist(alice, bob):
    bundle = export_bundle_build(request_id=verified_request(alice).pk)
    with pytest.raises(RequestNotFound) as theirs:
        export_download(subject_id=bob.pk, bundle_id=bundle.pk, actor=Actor.person(bob.pk))
    with pytest.raises(RequestNotFound) as missing:
        export_download(subject_id=bob.pk, bundle_id=uuid.uuid4(), actor=Actor.person(bob.pk))
    assert theirs.value.message == missing.value.message
    bundle.refresh_from_db()
    assert bundle.downloaded_at is None


def test_the_download_is_audited_and_the_first_one_recorded(alice):
    bundle = export_bundle_build(request_id=verified_request(alice).pk)
    _, first = export_download(subject_id=alice.pk, bundle_id=bundle.pk, actor=Actor.person(alice.pk))
    _, second = export_download(subject_id=alice.pk, bundle_id=bundle.pk, actor=Actor.person(alice.pk))
    assert first.downloaded_at is not None and second.downloaded_at == first.downloaded_at
    assert AuditEntry.objects.filter(action="rights.unseal", fields=["rights.exportbundle.content"]).count() == 2


def test_an_expired_bundle_is_refused_then_deleted(alice, bob):
    mine = export_bundle_build(request_id=verified_request(alice).pk)
    theirs = export_bundle_build(request_id=verified_request(bob).pk)
    later = timezone.now() + timedelta(hours=73)
    ExportBundle.objects.filter(pk=mine.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(ExportExpired):
        export_download(subject_id=alice.pk, bundle_id=mine.pk, actor=Actor.person(alice.pk))
    assert exports_expire() == 1
    assert list(ExportBundle.objects.values_list("pk", flat=True)) == [theirs.pk]
    assert exports_expire(now=later) == 1 and not ExportBundle.objects.exists()
    assert exports_expire(now=later) == 0


def test_the_expiry_runs_hourly_on_beat(settings):
    from rights.tasks import exports_expire as task

    [entry] = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == task.name]
    assert entry["schedule"] == 3600


def test_a_request_rejected_while_it_was_built_keeps_no_bundle(alice, monkeypatch):
    from rights.services import export
    from rights.services.requests import rights_request_reject

    request = verified_request(alice)
    build = export.export_zip_build

    def rejected_midway(**kwargs):
        rights_request_reject(request_id=request.pk, actor=Actor.staff("7"), reason="Manifestly excessive.")
        return build(**kwargs)

    monkeypatch.setattr(export, "export_zip_build", rejected_midway)
    assert export_bundle_build(request_id=request.pk) is None
    request.refresh_from_db()
    assert request.status == Status.REJECTED and not ExportBundle.objects.exists()
