"""The demo people (`seed_demo --people N`, demo.people) and the bulk consent import they use."""

import re
import uuid
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection

from consent.errors import (
    AgeUnknown,
    DoubleOptInRequired,
    NotConsentBased,
    ParentalConsentRequired,
    UnknownPurpose,
)
from consent.models import ConsentEvent, ConsentState, ConsentStatus, EventType, Method
from consent.selectors import consent_granted_subjects, consent_is_granted
from consent.services import consent_grant, consent_import_many, consent_projection_rebuild
from demo.people import demo_people_create
from profiles.gate import ACCOUNT_PURPOSE, Actor, profile_read, profile_records_read
from profiles.models import Category, FieldDefinition, ProfileDocument, ProfileEvent, ProfileValue, RecordKind
from profiles.types import value_clean
from tests.factories import give_birth_date
from vault.audit import audit_verify
from vault.models import AuditEntry

pytestmark = pytest.mark.usefixtures("profile_schema")
SEED = 20261128


@pytest.fixture
def people(profile_schema):
    """50 demo people, with what was generated for them (the plaintext the database must not hold)."""
    generated = []
    run = demo_people_create(count=50, seed=SEED, batch_size=20, on_person=generated.append)
    assert run.subject_ids == [person.subject_id for person in generated]
    return run, generated


@pytest.mark.slow
def test_values_cover_every_category_of_the_default_schema(people):
    run, _ = people
    categories = set(ProfileValue.objects.values_list("definition__category", flat=True))
    assert categories == set(Category.values)
    assert run.values == ProfileValue.objects.count()
    assert run.documents == ProfileDocument.objects.count() > 0
    assert run.events == ProfileEvent.objects.count() > 0
    assert set(ProfileValue.objects.values_list("subject_id", flat=True)) == set(run.subject_ids)


@pytest.mark.slow
def test_events_and_documents_only_where_their_purpose_is_granted(people):
    run, generated = people
    planned = Counter(slug for person in generated for slug, _, _ in person.events)
    stored = Counter(ProfileEvent.objects.values_list("kind__slug", flat=True))
    assert planned["email_engagement"] > 0 and stored["email_engagement"] == 0  # double opt-in: never imported
    assert {"order", "return", "loyalty_points", "page_view", "product_view", "review"} <= set(stored)
    for kind in RecordKind.objects.select_related("purpose"):
        for model in (ProfileEvent, ProfileDocument):
            subjects = set(model.objects.filter(kind=kind).values_list("subject_id", flat=True))
            granted = consent_granted_subjects(subject_ids=subjects, purpose=kind.purpose.slug)
            assert subjects == granted, f"{kind.slug} stored without its purpose's consent"
    # A value kept only under a consent-based purpose is there only for people who granted one.
    personal = set(ProfileValue.objects.filter(definition__key="shoe_size").values_list("subject_id", flat=True))
    assert personal == consent_granted_subjects(subject_ids=run.subject_ids, purpose="personalization")
    nobody = [p.subject_id for p in generated if "personalization" not in set(p.grants) - set(p.withdrawals)]
    assert not ProfileEvent.objects.filter(subject_id__in=nobody, kind__purpose__slug="personalization").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("people")
def test_consents_are_a_plausible_mix_in_a_consistent_ledger():
    events = ConsentEvent.objects.all()
    assert set(events.values_list("method", flat=True)) == {Method.IMPORT}
    assert set(events.values_list("event_type", flat=True)) == {EventType.GRANT, EventType.WITHDRAW}
    granted = Counter(ConsentState.objects.filter(status=ConsentStatus.GRANTED).values_list("purpose__slug", flat=True))
    assert 15 <= granted["personalization"] <= 45 and granted["analytics"] >= 5
    assert "email-marketing" not in granted  # needs a double opt-in, which an import cannot prove
    assert consent_projection_rebuild(dry_run=True).in_step
    call_command("consent_rebuild", "--check")  # raises CommandError when out of step
    assert audit_verify().ok
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"consent.grant", "consent.withdraw", "profile.import"} <= actions


@pytest.mark.slow
def test_values_and_events_decrypt_through_the_gate_as_generated(people):
    _, generated = people
    person = generated[0]
    keys = ["given_name", "family_name", "phone", "birth_date", "country"]
    definitions = {d.key: d for d in FieldDefinition.objects.filter(key__in=keys)}
    held = profile_read(subject_id=person.subject_id, fields=keys, purpose=ACCOUNT_PURPOSE, actor=Actor.staff("t"))
    assert {key: value.value for key, value in held.items()} == {
        key: value_clean(definitions[key], person.values[key]) for key in keys
    }
    analysed = next(p for p in generated if "analytics" in set(p.grants) - set(p.withdrawals) and p.events)
    views = profile_records_read(
        subject_id=analysed.subject_id, purpose="analytics", actor=Actor.partner("shop"), shape="event"
    )
    planned = sorted((when, payload["path"]) for slug, when, payload in analysed.events if slug == "page_view")
    assert sorted((r.occurred_at, r.body["path"]) for r in views) == planned
    assert {r.kind for r in views} <= {"page_view"}  # analytics is given only what it may use


@pytest.mark.slow
def test_every_import_is_audited_per_person_naming_fields_never_values(people):
    run, _ = people
    imports = AuditEntry.objects.filter(action="profile.import")
    assert imports.values("subject_pseudonym").distinct().count() == len(run.subject_ids)
    assert set(imports.values_list("actor_id", flat=True)) == {"seed_demo"}
    names = {name for entry in imports for name in entry.fields}
    assert {"given_name", "event.order", "document.social_profile"} <= names


@pytest.mark.slow
def test_the_same_seed_makes_the_same_people_with_new_ids():
    first, second = [], []
    demo_people_create(count=5, seed=3, on_person=first.append)
    demo_people_create(count=5, seed=3, on_person=second.append)
    assert [p.values for p in first] == [p.values for p in second]
    assert not {p.subject_id for p in first} & {p.subject_id for p in second}


# --- Nothing personal in plaintext ----------------------------------------------------------------

_WORD = r"(?<![0-9A-Za-z]){}(?![0-9A-Za-z])"


def _dump() -> tuple[list[str], list[bytes]]:
    """Every row of every table: text columns as text, binary columns as their bytes. UUIDs are
    written without hyphens, so a four-digit postal code cannot match one of their groups."""
    texts: list[str] = []
    blobs: list[bytes] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 (table names)
            for row in cursor.fetchall():
                cells = []
                for cell in row:
                    if isinstance(cell, bytes | memoryview):
                        blobs.append(bytes(cell))
                    elif isinstance(cell, uuid.UUID):
                        cells.append(cell.hex)
                    elif cell is not None:
                        cells.append(str(cell))
                texts.append("\x1f".join(cells))
    return texts, blobs


def _found(needle: str, texts: list[str], blobs: list[bytes]) -> bool:
    """Whether `needle` is in the dump as a whole word of text, or in a binary column. Short
    needles are looked for in binary columns only as a whole value or in a form a value takes
    when encoded (tagged text, a JSON string): three random bytes match somewhere in a few
    hundred kilobytes of ciphertext by chance, a whole 4-byte form almost never."""
    pattern = re.compile(_WORD.format(re.escape(needle)))
    if any(pattern.search(text) for text in texts):
        return True
    raw = needle.encode()
    forms = [raw] if len(raw) >= 5 else [b'"' + raw + b'"']
    return any(blob in (raw, b"s" + raw) or any(form in blob for form in forms) for blob in blobs)


def _plaintexts(person) -> set[str]:
    values = person.values
    found = {values["given_name"], values["family_name"], values["email"], values["phone"]}
    found |= {value_clean(FieldDefinition.objects.get(key="phone"), values["phone"]), person.street}
    found |= {values["city"], values["postal_code"], values["birth_date"].isoformat()}
    found |= {values["birth_date"].strftime("%d.%m.%Y"), values["birth_date"].strftime("%d/%m/%Y")}
    if "social_profile_url" in values:
        found.add(values["social_profile_url"])
    return found


@pytest.mark.slow
def test_a_database_dump_holds_none_of_the_demo_peoples_personal_data(people):
    _, generated = people
    call_command("seed_demo")  # the logins, with their small profiles, too
    texts, blobs = _dump()
    # The dump sees what it should: the login identifiers are plaintext by design, and
    # the ciphertexts are there to be searched.
    assert _found("ada@demo.example", texts, blobs)
    assert len(blobs) > len(generated) * 10
    needles = {needle for person in generated for needle in _plaintexts(person)}
    needles |= {"Lovelace", "Hopper", "Turing"}
    assert len(needles) > 300
    leaked = sorted(needle for needle in needles if _found(needle, texts, blobs))
    assert leaked == []


def test_the_search_would_find_a_leak_in_any_column():
    texts, blobs = ["x\x1fHertrampf\x1f2"], [b"\x01" + bytes(40), b"sAna"]
    assert _found("Hertrampf", texts, blobs) and _found("Ana", texts, blobs)
    assert not _found("1124", ["5d2f1124ab"], [])  # inside a hash or an id: not a postal code
    assert _found("98541", [], [b'{"postal_code":"98541"}'])


# --- The bulk consent import ------------------------------------------------------------------------


def _adults(*subjects):
    return dict.fromkeys(subjects, 30), dict.fromkeys(subjects, "DE")


def test_import_refuses_what_consent_grant_refuses_and_writes_nothing():
    subject = uuid.uuid4()
    ages, regions = _adults(subject)
    for purpose, error in (
        ("email-marketing", DoubleOptInRequired),
        ("account-management", NotConsentBased),
        ("no-such-purpose", UnknownPurpose),
    ):
        with pytest.raises(error):
            consent_import_many(
                grants=[(subject, "personalization"), (subject, purpose)], ages=ages, jurisdictions=regions
            )
    with pytest.raises(NotConsentBased):
        consent_import_many(grants=[], withdrawals=[(subject, "account-management")])
    assert not ConsentEvent.objects.exists() and not AuditEntry.objects.exists()


def test_import_applies_the_age_gate():
    adult, child, unknown = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with pytest.raises(ParentalConsentRequired):
        consent_import_many(grants=[(adult, "analytics"), (child, "analytics")], ages={adult: 30, child: 12})
    with pytest.raises(AgeUnknown):
        consent_import_many(grants=[(adult, "analytics"), (unknown, "analytics")], ages={adult: 30})
    assert not ConsentEvent.objects.exists()


def test_import_reads_the_age_and_country_from_the_profile(alice):
    give_birth_date(alice, "1990-06-01")
    assert consent_import_many(grants=[(alice.pk, "analytics")]) == 1
    assert consent_is_granted(subject_id=alice.pk, purpose="analytics")
    assert ConsentEvent.objects.get(subject_id=alice.pk).jurisdiction == ""  # no country in the profile


def test_import_reads_the_age_as_a_single_grant_does_even_when_processing_is_restricted(alice):
    from profiles.services import profile_restrict

    give_birth_date(alice, "1990-06-01")
    profile_restrict(subject_id=alice.pk, actor=Actor.person(alice.pk))

    # The age gate is the law's: a restriction of processing does not hide the birth date from it.
    assert consent_import_many(grants=[(alice.pk, "analytics")]) == 1
    assert AuditEntry.objects.filter(actor_id="age-gate", purpose="data-subject-rights").exists()


def test_import_continues_each_persons_ledger(alice, bob):
    give_birth_date(alice)
    consent_grant(subject_id=alice.pk, purpose="personalization", method=Method.WEB_FORM)
    ages, regions = _adults(alice.pk, bob.pk)
    written = consent_import_many(
        grants=[(alice.pk, "personalization"), (bob.pk, "personalization"), (bob.pk, "personalization")],
        withdrawals=[(alice.pk, "personalization"), (bob.pk, "analytics")],
        ages=ages,
        jurisdictions=regions,
    )
    assert written == 4
    history = list(
        ConsentEvent.objects.filter(subject_id=alice.pk).order_by("seq").values_list("seq", "event_type", "method")
    )
    assert history == [
        (1, EventType.GRANT, Method.WEB_FORM),
        (2, EventType.RENEW, Method.IMPORT),
        (3, EventType.WITHDRAW, Method.IMPORT),
    ]
    assert not consent_is_granted(subject_id=alice.pk, purpose="personalization")
    assert consent_is_granted(subject_id=bob.pk, purpose="personalization")
    assert ConsentState.objects.get(subject_id=bob.pk, purpose__slug="analytics").status == ConsentStatus.WITHDRAWN
    assert consent_projection_rebuild(dry_run=True).in_step
    imported = AuditEntry.objects.filter(actor_id="consent.import")
    assert sorted(imported.values_list("action", flat=True)) == sorted(
        ["consent.renew", "consent.withdraw", "consent.grant", "consent.withdraw"]
    )
    assert audit_verify().ok


def test_import_runs_a_fixed_number_of_queries_per_batch(django_assert_max_num_queries):
    def run(count):
        subjects = [uuid.uuid4() for _ in range(count)]
        ages, regions = _adults(*subjects)
        with django_assert_max_num_queries(30) as captured:
            consent_import_many(grants=[(s, "analytics") for s in subjects], ages=ages, jurisdictions=regions)
        return len(captured)

    run(1)  # the first append of the log makes its head
    assert run(3) == run(60)
