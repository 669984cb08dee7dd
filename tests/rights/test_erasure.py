"""Erasure end to end, through the services, the tasks and the commands: after it no row refers
to the person, a dump holds none of their data, the audit chain verifies, sign-in fails, and a
restored backup is made to forget them again by the journal's replay."""

import os
import subprocess
import uuid
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.apps import apps
from django.core.management import call_command
from django.db import connection, models
from django.utils import timezone

from accounts.models import User
from profiles.gate import Actor, profile_record_write
from rights.models import RightsRequest
from rights.services import erasure_execute, rights_legal_hold_set, rights_request_submit
from rights.tasks import erasures_run
from tests.factories import PASSWORD, UserFactory, add_totp, fill, grant
from vault.audit import audit_verify
from vault.models import AuditEntry, AuditPseudonym, DataKey, ErasedSubject

AUDIT_MODELS = {"vault.auditentry", "vault.audithead", "vault.auditcheckpoint"}


@pytest.fixture(autouse=True)
def _grace(settings, tmp_path):
    settings.RIGHTS_ERASURE_GRACE_HOURS = 0
    settings.VAULT_ERASURE_JOURNAL = str(tmp_path / "erasure-journal.jsonl")


def _rich_person(email: str) -> User:
    person = UserFactory.create(email=email)
    EmailAddress.objects.create(user=person, email=email, verified=True, primary=True)
    grant(person, "personalization", "analytics")
    fill(person, given_name="Zebediah", city="Quimperlé")
    fill(person, given_name="Zebedee")  # an earlier value in history
    add_totp(person)
    return person


def _events(person: User, count: int) -> None:
    for n in range(count):
        profile_record_write(
            subject_id=person.pk,
            kind="page_view",
            shape="event",
            body={"page": f"/shoes/{n}", "note": "Xylophone-Unique"},
            source="partner",
            source_name="shop",
            actor=Actor.partner("shop"),
        )


def _ask_erasure(person: User) -> RightsRequest:
    return rights_request_submit(
        subject_id=person.pk,
        kind="erasure",
        channel="portal",
        verification="reauthentication",
        actor=Actor.person(person.pk),
        confirm=True,
    )


def _rows_about(person_id: uuid.UUID) -> dict[str, int]:
    """Every row of every table whose UUID column or foreign key to the user holds the person."""
    found = {}
    for model in apps.get_models():
        if not model._meta.managed or model._meta.label_lower in AUDIT_MODELS | {"vault.erasedsubject"}:
            continue  # the chain keeps a tombstone; the marker holds only the opaque id by design
        for field in model._meta.concrete_fields:
            if isinstance(field, models.UUIDField) or (
                isinstance(field, models.ForeignKey) and field.related_model is User
            ):
                count = model._default_manager.filter(**{field.attname: person_id}).count()
                if count:
                    found[f"{model._meta.label}.{field.name}"] = count
    return found


@pytest.fixture
def schema(profile_schema):
    pass


@pytest.mark.django_db
def test_erasure_leaves_no_row_about_the_person(schema, client):
    alice, bob = _rich_person("alice@example.com"), _rich_person("bob@example.com")
    _events(alice, 3)
    client.force_login(alice)
    _ask_erasure(alice)
    erasures_run()  # the beat task: grace period over, not on hold
    assert _rows_about(alice.pk) == {}
    assert not DataKey.objects.filter(subject_id=alice.pk).exists()
    assert ErasedSubject.objects.filter(subject_id=alice.pk).exists()
    assert not AuditPseudonym.objects.filter(subject_id=alice.pk).exists()
    assert AuditEntry.objects.filter(action="subject.shred").count() == 1
    assert audit_verify().ok
    call_command("consent_rebuild", "--check")
    assert _rows_about(bob.pk), "the other person keeps everything"
    assert client.get("/api/v1/me/").status_code == 401, "the session ended"
    assert not client.login(email="alice@example.com", password=PASSWORD)


@pytest.mark.django_db
def test_the_moment_of_erasure_costs_the_same_queries_for_10_or_200_events(schema, django_assert_num_queries):
    from django.test.utils import CaptureQueriesContext

    counts = []
    for n, events in enumerate((10, 200)):
        person = _rich_person(f"p{n}@example.com")
        _events(person, events)
        request = _ask_erasure(person)
        with CaptureQueriesContext(connection) as queries:
            erasure_execute(request_id=request.pk)
        counts.append(len(queries))
    assert counts[0] == counts[1]


@pytest.mark.django_db
def test_a_legal_hold_pauses_and_cancelling_stops_it(schema, staff):
    alice = _rich_person("alice@example.com")
    request = _ask_erasure(alice)
    rights_legal_hold_set(request_id=request.pk, actor=Actor.staff(staff.pk), reason="Pending litigation")
    assert erasures_run() == 0
    assert DataKey.objects.filter(subject_id=alice.pk).exists()
    assert erasure_execute(request_id=request.pk) is None


@pytest.mark.django_db
def test_not_before_the_grace_period_ends(schema, settings):
    settings.RIGHTS_ERASURE_GRACE_HOURS = 24
    alice = _rich_person("alice@example.com")
    request = _ask_erasure(alice)
    assert erasures_run() == 0
    assert erasure_execute(request_id=request.pk) is None
    assert erasure_execute(request_id=request.pk, now=timezone.now() + timedelta(hours=25)) == alice.pk


@pytest.mark.django_db
def test_any_request_about_an_erased_person_is_refused(schema):
    from rights.errors import PersonErased

    alice = _rich_person("alice@example.com")
    call_command("rights_erase", str(alice.pk), "--note", "Letter with ID checked", "--yes")
    assert _rows_about(alice.pk) == {}
    with pytest.raises(PersonErased):
        rights_request_submit(
            subject_id=alice.pk, kind="access", channel="offline", verification="", actor=Actor.system("test")
        )


# --- What a dump holds, and a restore ----------------------------------------------------------
def _pg(program: str, *args: str) -> str:
    config = connection.settings_dict
    where = ["-h", config["HOST"] or "127.0.0.1", "-p", str(config["PORT"] or 5432), "-U", config["USER"]]
    env = {**os.environ, "PGPASSWORD": config.get("PASSWORD") or ""}
    done = subprocess.run([program, *where, *args], env=env, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode("utf-8", "replace")


def _tables() -> list[str]:
    audit = {apps.get_model(label)._meta.db_table for label in AUDIT_MODELS}
    return [t for t in connection.introspection.table_names() if t not in audit and t != "django_migrations"]


@pytest.fixture
def postgresql(committed_db):
    if connection.vendor != "postgresql":
        pytest.skip("pg_dump needs PostgreSQL (set DATABASE_URL=postgres://...)")


@pytest.mark.slow
def test_a_dump_after_erasure_holds_neither_the_login_email_nor_any_value(postgresql, schema):
    alice = _rich_person("alice-unique-login@example.com")
    _events(alice, 2)
    _ask_erasure(alice)
    erasures_run()
    dump = _pg("pg_dump", "--data-only", connection.settings_dict["NAME"])
    for needle in ("alice-unique-login", "Zebediah", "Zebedee", "Quimperl", "Xylophone-Unique"):
        assert needle not in dump, needle
    # The opaque id stays only where it must: the erasure marker (so no key is ever made for it
    # again) and the outbox event that tells the partners to forget it.
    assert _tables_holding(dump, str(alice.pk)) <= {"public.vault_erasedsubject", "public.vault_outboxevent"}


def _tables_holding(dump: str, needle: str) -> set[str]:
    tables, current = set(), ""
    for line in dump.splitlines():
        if line.startswith("COPY "):
            current = line.split()[1]
        elif needle in line:
            tables.add(current)
    return tables


@pytest.mark.slow
def test_a_restored_dump_is_made_to_forget_again_by_the_replay(postgresql, schema, tmp_path):
    alice, bob = _rich_person("alice@example.com"), _rich_person("bob@example.com")
    _events(alice, 2)
    backup = tmp_path / "before.dump"
    name = connection.settings_dict["NAME"]
    tables = _tables()
    _pg("pg_dump", "--data-only", "--format=custom", *[a for t in tables for a in ("-t", t)], "-f", str(backup), name)
    _ask_erasure(alice)
    erasures_run()
    assert _rows_about(alice.pk) == {}

    with connection.cursor() as cursor:  # the restore: the database as it was before the erasure
        cursor.execute(f"TRUNCATE {', '.join(connection.ops.quote_name(t) for t in tables)} CASCADE")
    _pg("pg_restore", "--data-only", "--disable-triggers", "-d", name, str(backup))
    assert User.objects.filter(pk=alice.pk).exists(), "the restore brought her back"
    assert DataKey.objects.filter(subject_id=alice.pk).exists()

    call_command("rights_erasure_replay")
    assert _rows_about(alice.pk) == {}
    assert not DataKey.objects.filter(subject_id=alice.pk).exists()
    assert not User.objects.filter(pk=alice.pk).exists()
    assert _rows_about(bob.pk), "everyone else is restored as they were"
