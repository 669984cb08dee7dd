import datetime
import decimal
import uuid

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import connection
from django.test.utils import CaptureQueriesContext

from consent.errors import UnknownPurpose
from profiles.errors import (
    ConsentRequired,
    FieldNotForPurpose,
    FieldNotSearchable,
    InvalidValue,
    PersonErased,
    ProcessingRestricted,
    SourceNotAllowed,
    UnknownField,
    UnknownKind,
    ValueTooLong,
)
from profiles.gate import (
    RIGHTS_PURPOSE,
    Actor,
    profile_find,
    profile_history_read,
    profile_read,
    profile_read_many,
    profile_record_write,
    profile_records_read,
    profile_write,
)
from profiles.models import ProfileDocument, ProfileEvent, ProfileValue, ProfileValueHistory, RecordKind, Source
from profiles.services import field_definition_deprecate, profile_restrict
from tests.factories import fill, grant
from vault.audit import audit_pseudonym_for
from vault.errors import InvalidInput
from vault.models import AuditEntry, AuditEntrySubject, AuditPseudonym
from vault.services import subject_keys_shred

pytestmark = pytest.mark.usefixtures("schema")
SHOP = Actor.partner("shop")


def test_person_writes_and_reads_back_own_values_with_provenance(alice):
    fill(alice, given_name="Ada", birth_date="1990-12-10", shoe_size="42", interests=["running", "yoga"])

    read = profile_read(
        subject_id=alice.pk,
        fields=["given_name", "birth_date", "shoe_size", "interests", "phone"],
        purpose=RIGHTS_PURPOSE,
        actor=Actor.person(alice.pk),
    )

    assert {key: held.value for key, held in read.items()} == {
        "given_name": "Ada",
        "birth_date": datetime.date(1990, 12, 10),
        "shoe_size": "42",
        "interests": ["running", "yoga"],
    }
    assert read["given_name"].source == Source.SELF_SERVICE
    assert read["given_name"].expires_at > read["given_name"].collected_at


def test_values_are_stored_only_as_ciphertext(alice):
    fill(alice, given_name="Zebulon-Quintessa")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM profiles_profilevalue")
        rows = cursor.fetchall()
    assert rows
    assert not any(b"Zebulon" in bytes(col) for row in rows for col in row if isinstance(col, bytes | memoryview))
    assert "Zebulon" not in repr(rows)


def test_a_marketing_read_needs_the_persons_consent(alice):
    fill(alice, shoe_size="42")

    with pytest.raises(ConsentRequired):
        profile_read(subject_id=alice.pk, fields=["shoe_size"], purpose="personalization", actor=SHOP)

    grant(alice, "personalization")
    read = profile_read(subject_id=alice.pk, fields=["shoe_size"], purpose="personalization", actor=SHOP)
    assert read["shoe_size"].value == "42"


def test_a_field_is_released_only_for_the_purposes_it_serves(alice):
    grant(alice, "analytics")
    with pytest.raises(FieldNotForPurpose) as raised:
        profile_read(subject_id=alice.pk, fields=["country", "phone"], purpose="analytics", actor=SHOP)
    assert raised.value.param == "phone"


def test_unknown_fields_and_purposes_are_named(alice):
    with pytest.raises(UnknownField) as raised:
        profile_read(subject_id=alice.pk, fields=["shoe_size", "shoesize"], purpose=RIGHTS_PURPOSE, actor=SHOP)
    assert raised.value.param == "shoesize"
    with pytest.raises(UnknownPurpose):
        profile_read(subject_id=alice.pk, fields=["shoe_size"], purpose="mind-reading", actor=SHOP)


def test_restriction_stops_marketing_but_not_the_persons_rights(alice):
    fill(alice, shoe_size="42")
    grant(alice, "personalization")
    profile_restrict(subject_id=alice.pk, actor=Actor.staff(uuid.uuid4()))

    with pytest.raises(ProcessingRestricted):
        profile_read(subject_id=alice.pk, fields=["shoe_size"], purpose="personalization", actor=SHOP)
    assert profile_read_many(subject_ids=[alice.pk], fields=["shoe_size"], purpose="personalization", actor=SHOP) == {}
    own = profile_read(subject_id=alice.pk, fields=["shoe_size"], purpose=RIGHTS_PURPOSE, actor=Actor.person(alice.pk))
    assert own["shoe_size"].value == "42"


def test_every_read_is_audited_with_fields_purpose_and_actor_never_values(alice):
    fill(alice, given_name="Ada", shoe_size="42")
    grant(alice, "personalization")

    profile_read(subject_id=alice.pk, fields=["shoe_size", "given_name"], purpose="personalization", actor=SHOP)

    entry = AuditEntry.objects.order_by("-seq").first()
    assert entry.action == "profile.read"
    assert entry.fields == ["shoe_size", "given_name"]
    assert entry.purpose == "personalization"
    assert (entry.actor_type, entry.actor_id) == ("partner", "shop")
    assert entry.subject_pseudonym == AuditPseudonym.objects.get(subject_id=alice.pk).pseudonym
    assert "Ada" not in repr(AuditEntry.objects.values_list())


def test_reading_an_erased_person_is_a_typed_error(alice):
    fill(alice, given_name="Ada")
    subject_keys_shred(subject_id=alice.pk, actor_type="system", actor_id="test")
    with pytest.raises(PersonErased):
        profile_read(subject_id=alice.pk, fields=["given_name"], purpose=RIGHTS_PURPOSE, actor=Actor.person(alice.pk))


# --- Writes -----------------------------------------------------------------------------------
def test_bad_values_are_reported_per_field_and_nothing_is_written(alice, settings):
    settings.VAULT_PROFILE_MAX_VALUE_BYTES = 100
    with pytest.raises(InvalidInput) as raised:
        fill(
            alice,
            given_name="Ada",
            birth_date="10/12/1990",
            shoe_size="99",
            interests=["running", "running"],
            favorite_brands="x" * 101,
            phone="call me",
            email="ada@",
            country="Atlantis",
            social_profile_url="javascript:alert(1)",
            nickname="A",
        )
    errors = {problem.param: problem.code for problem in raised.value.problems}
    assert set(errors) == {
        "birth_date",
        "shoe_size",
        "interests",
        "favorite_brands",
        "phone",
        "email",
        "country",
        "social_profile_url",
        "nickname",
    }
    assert errors["nickname"] == "unknown_field"
    assert errors["favorite_brands"] == "value_too_long"
    assert errors["shoe_size"] == "invalid_value"
    assert not ProfileValue.objects.exists()


def test_values_are_typed_and_normalized(alice):
    profile_write(
        subject_id=alice.pk,
        values={"phone": "+31 6 1234 5678", "email": "Ada@Example.COM", "country": "nl", "lifetime_value": "12.50"},
        source=Source.IMPORT,
        source_name="crm",
        purpose=RIGHTS_PURPOSE,
        actor=Actor.staff(uuid.uuid4()),
    )
    read = profile_read(
        subject_id=alice.pk,
        fields=["phone", "email", "country", "lifetime_value"],
        purpose=RIGHTS_PURPOSE,
        actor=Actor.person(alice.pk),
    )
    assert {key: held.value for key, held in read.items()} == {
        "phone": "+31612345678",
        "email": "Ada@example.com",
        "country": "NL",
        "lifetime_value": decimal.Decimal("12.50"),
    }
    assert read["phone"].source_name == "crm"


def test_a_source_the_field_does_not_allow_is_refused(alice):
    with pytest.raises(InvalidInput) as raised:
        profile_write(
            subject_id=alice.pk,
            values={"loyalty_tier": "gold"},
            source=Source.SELF_SERVICE,
            purpose="loyalty-programme",
            actor=SHOP,
        )
    assert _code_of(raised.value, "loyalty_tier") == "source_not_allowed"
    with pytest.raises(SourceNotAllowed):
        profile_write(subject_id=alice.pk, values={}, source="carrier-pigeon", purpose=RIGHTS_PURPOSE, actor=SHOP)


def test_the_person_cannot_rectify_fields_the_brand_keeps(alice):
    with pytest.raises(InvalidInput) as raised:
        profile_write(
            subject_id=alice.pk,
            values={"lifetime_value": "1000000"},
            source=Source.SELF_SERVICE,
            purpose=RIGHTS_PURPOSE,
            actor=Actor.person(alice.pk),
        )
    assert _code_of(raised.value, "lifetime_value") == "field_not_editable"


def test_a_partner_writes_only_under_a_granted_purpose(alice):
    def write():
        profile_write(
            subject_id=alice.pk,
            values={"shoe_size": "40"},
            source=Source.PARTNER,
            purpose="personalization",
            actor=SHOP,
        )

    with pytest.raises(ConsentRequired):
        write()
    assert not ProfileValue.objects.exists()
    grant(alice, "personalization")
    write()
    assert ProfileValue.objects.get().legal_basis == "consent"


def test_a_deprecated_field_takes_no_new_values_but_keeps_old_ones(alice):
    fill(alice, city="Leiden")
    field_definition_deprecate(key="city", actor=Actor.staff(uuid.uuid4()))

    with pytest.raises(InvalidInput) as raised:
        fill(alice, city="Delft")
    assert _code_of(raised.value, "city") == "field_deprecated"
    own = profile_read(subject_id=alice.pk, fields=["city"], purpose=RIGHTS_PURPOSE, actor=Actor.person(alice.pk))
    assert own["city"].value == "Leiden"


def test_rectification_keeps_the_earlier_value_encrypted_and_removal_does_not(alice):
    fill(alice, city="Leiden")
    fill(alice, city="Delft")
    fill(alice, given_name="Ada")
    fill(alice, given_name=None)

    history = profile_history_read(subject_id=alice.pk, actor=Actor.person(alice.pk))
    assert [(item.key, item.value) for item in history] == [("city", "Leiden")]
    assert ProfileValueHistory.objects.count() == 1
    current = profile_read(
        subject_id=alice.pk, fields=["city", "given_name"], purpose=RIGHTS_PURPOSE, actor=Actor.person(alice.pk)
    )
    assert {key: held.value for key, held in current.items()} == {"city": "Delft"}


# --- Bulk reads and lookups -------------------------------------------------------------------
def _people(django_user_model, count):
    return [django_user_model.objects.create_user(f"p{i}@example.com") for i in range(count)]


def test_bulk_read_releases_only_consenting_people(alice, bob, django_user_model):
    carol = django_user_model.objects.create_user("carol@example.com")
    for person, size in ((alice, "38"), (bob, "44"), (carol, "40")):
        fill(person, shoe_size=size, clothing_size="M")
    grant(alice, "personalization")
    grant(bob, "personalization")

    found = profile_read_many(
        subject_ids=[alice.pk, bob.pk, carol.pk],
        fields=["shoe_size", "clothing_size"],
        purpose="personalization",
        actor=SHOP,
    )

    assert found == {
        alice.pk: {"shoe_size": "38", "clothing_size": "M"},
        bob.pk: {"shoe_size": "44", "clothing_size": "M"},
    }
    # One entry for the batch, naming the two people read (not carol), by pseudonym.
    (entry,) = AuditEntry.objects.filter(action="profile.read", purpose="personalization")
    named = set(AuditEntrySubject.objects.filter(entry_seq=entry.seq).values_list("subject_pseudonym", flat=True))
    assert named == {audit_pseudonym_for(alice.pk), audit_pseudonym_for(bob.pk)}
    assert entry.subject_pseudonym is None and entry.subjects_digest


def test_bulk_read_runs_a_constant_number_of_queries(django_user_model):
    def queries_for(people):
        for person in people:
            fill(person, shoe_size="40", given_name="Pat")
            grant(person, "personalization")
        with CaptureQueriesContext(connection) as captured:
            found = profile_read_many(
                subject_ids=[p.pk for p in people],
                fields=["shoe_size", "given_name"],
                purpose="personalization",
                actor=SHOP,
            )
        assert len(found) == len(people)
        return len(captured)

    people = _people(django_user_model, 23)
    assert queries_for(people[:3]) == queries_for(people[3:])


def test_find_by_a_searchable_field_confirms_candidates(alice, bob):
    for person, email in ((alice, "ada@example.com"), (bob, "bob@example.com")):
        profile_write(
            subject_id=person.pk, values={"email": email}, source=Source.IMPORT, purpose=RIGHTS_PURPOSE, actor=SHOP
        )
        grant(person, "advertising-partners")

    assert profile_find(field="email", value=" ADA@example.com", purpose="advertising-partners", actor=SHOP) == [
        alice.pk
    ]
    assert profile_find(field="email", value="eve@example.com", purpose="advertising-partners", actor=SHOP) == []
    assert ProfileValue.objects.filter(definition__key="email").exclude(blind_index="").count() == 2


# --- Documents and events -----------------------------------------------------------------------
def _event(person, kind="product_view", body=None, source=Source.PARTNER):
    return profile_record_write(
        subject_id=person.pk,
        kind=kind,
        shape=RecordKind.Shape.EVENT,
        body=body if body is not None else {"sku": "RUN-42"},
        source=source,
        actor=SHOP,
    )


def test_events_without_consent_are_refused_at_ingestion_not_stored(alice):
    with pytest.raises(ConsentRequired):
        _event(alice)
    assert not ProfileEvent.objects.exists()

    grant(alice, "personalization")
    _event(alice)
    assert ProfileEvent.objects.count() == 1


def test_bad_records_are_typed_errors(alice, settings):
    grant(alice, "personalization")
    with pytest.raises(UnknownKind):
        _event(alice, kind="heartbeat")
    with pytest.raises(UnknownKind):
        _event(alice, kind="social_profile")  # a document kind, not an event kind
    with pytest.raises(SourceNotAllowed):
        _event(alice, source=Source.SELF_SERVICE)
    with pytest.raises(InvalidValue):
        _event(alice, body="just text")
    settings.VAULT_PROFILE_MAX_DOCUMENT_BYTES = 1024
    with pytest.raises(ValueTooLong):
        _event(alice, body={"note": "x" * 2000})
    assert not ProfileEvent.objects.exists()


def test_a_purpose_reads_only_the_kinds_collected_for_it(alice):
    grant(alice, "personalization", "analytics")
    _event(alice, kind="product_view")
    _event(alice, kind="page_view", body={"path": "/shoes"})

    for_analytics = profile_records_read(subject_id=alice.pk, purpose="analytics", actor=SHOP, shape="event")
    assert [(r.kind, r.body) for r in for_analytics] == [("page_view", {"path": "/shoes"})]
    withdrawn = profile_records_read(subject_id=alice.pk, purpose=RIGHTS_PURPOSE, actor=SHOP, shape="event")
    assert len(withdrawn) == 2


def test_a_document_replaces_the_one_of_the_same_kind_and_source(alice):
    grant(alice, "personalization")
    for likes in (["running"], ["yoga"]):
        profile_record_write(
            subject_id=alice.pk,
            kind="social_profile",
            shape=RecordKind.Shape.DOCUMENT,
            body={"likes": likes},
            source=Source.SOCIAL,
            source_name="github",
            actor=Actor.system("social-import"),
        )
    documents = profile_records_read(subject_id=alice.pk, purpose="personalization", actor=SHOP, shape="document")
    assert [d.body for d in documents] == [{"likes": ["yoga"]}]
    assert ProfileDocument.objects.count() == 1


def test_changing_a_fields_index_recomputes_the_stored_indexes(alice, django_capture_on_commit_callbacks, monkeypatch):
    from profiles import tasks
    from profiles.gate import profile_field_reindex
    from profiles.services import field_definition_update

    queued = []
    monkeypatch.setattr(tasks.field_reindex, "delay", queued.append)  # the broker is not under test here
    profile_write(
        subject_id=alice.pk,
        values={"email": "ada@example.com"},
        source=Source.IMPORT,
        purpose=RIGHTS_PURPOSE,
        actor=SHOP,
    )
    grant(alice, "advertising-partners")
    before = ProfileValue.objects.get(definition__key="email").blind_index

    with django_capture_on_commit_callbacks(execute=True):
        field_definition_update(key="email", index_bits=16, actor=Actor.staff(uuid.uuid4()))
        field_definition_update(key="email", label="E-mail", actor=Actor.staff(uuid.uuid4()))  # no reindex
    assert queued == ["email"]
    assert profile_field_reindex(key="email") == 1

    after = ProfileValue.objects.get(definition__key="email").blind_index
    assert len(after) == 4 and after != before
    assert profile_find(field="email", value="ada@example.com", purpose="advertising-partners", actor=SHOP) == [
        alice.pk
    ]
    with django_capture_on_commit_callbacks(execute=True):
        field_definition_update(key="email", searchable=False, actor=Actor.staff(uuid.uuid4()))
    profile_field_reindex(key="email")
    assert ProfileValue.objects.get(definition__key="email").blind_index == ""
    with pytest.raises(FieldNotSearchable):
        profile_find(field="email", value="ada@example.com", purpose="advertising-partners", actor=SHOP)


def test_a_person_whose_values_do_not_decrypt_is_left_out_of_a_bulk_read(alice, bob, caplog):
    from vault.models import DataKey

    for person in (alice, bob):
        fill(person, shoe_size="40")
        grant(person, "personalization")
    DataKey.objects.filter(subject_id=bob.pk).delete()  # damaged: no key, yet not erased

    found = profile_read_many(
        subject_ids=[alice.pk, bob.pk], fields=["shoe_size"], purpose="personalization", actor=SHOP
    )

    assert found == {alice.pk: {"shoe_size": "40"}}
    assert str(bob.pk) in caplog.text


def test_a_bulk_read_gives_the_values_a_single_read_gives(alice, bob):
    fill(alice, given_name="Ada", birth_date="1990-12-10", shoe_size="42", interests=["running", "yoga"])
    fill(bob, given_name="Bob", shoe_size="44")
    grant(alice, "personalization")
    grant(bob, "personalization")
    fields = ["given_name", "birth_date", "shoe_size", "interests"]

    found = profile_read_many(subject_ids=[bob.pk, alice.pk], fields=fields, purpose="personalization", actor=SHOP)

    for person in (alice, bob):
        one = profile_read(subject_id=person.pk, fields=fields, purpose="personalization", actor=SHOP)
        assert found[person.pk] == {key: held.value for key, held in one.items()}
    assert found[alice.pk]["birth_date"] == datetime.date(1990, 12, 10)
    assert list(found) == [bob.pk, alice.pk]  # in the order asked


def test_an_erased_person_is_left_out_of_a_bulk_read_quietly(alice, bob, caplog):
    for person in (alice, bob):
        fill(person, shoe_size="40")
        grant(person, "personalization")
    subject_keys_shred(subject_id=bob.pk, actor_type="system", actor_id="test")

    found = profile_read_many(
        subject_ids=[alice.pk, bob.pk], fields=["shoe_size"], purpose="personalization", actor=SHOP
    )

    assert found == {alice.pk: {"shoe_size": "40"}}
    assert str(bob.pk) not in caplog.text  # erasure is no error
    assert AuditEntry.objects.filter(action="profile.read", purpose="personalization").count() == 1


def test_a_bulk_read_leaves_out_a_person_with_a_value_moved_between_rows(alice, bob, caplog):
    for person in (alice, bob):
        fill(person, shoe_size="40", clothing_size="M")
        grant(person, "personalization")
    shoe = ProfileValue.objects.get(subject_id=bob.pk, definition__key="shoe_size")
    clothing = ProfileValue.objects.get(subject_id=bob.pk, definition__key="clothing_size")
    ProfileValue.objects.filter(pk=shoe.pk).update(value=clothing.value)  # bound to the other row

    found = profile_read_many(
        subject_ids=[alice.pk, bob.pk],
        fields=["shoe_size", "clothing_size"],
        purpose="personalization",
        actor=SHOP,
    )

    assert found == {alice.pk: {"shoe_size": "40", "clothing_size": "M"}}  # none of bob's, not half
    assert str(bob.pk) in caplog.text
    assert AuditEntry.objects.filter(action="profile.read", purpose="personalization").count() == 1


def test_a_bulk_read_decrypts_values_under_two_data_key_versions_unwrapping_each_once(alice, monkeypatch):
    from vault import crypto
    from vault.keys import get_provider
    from vault.models import DataKey

    fill(alice, shoe_size="40", given_name="Ada")  # under the first data key
    grant(alice, "personalization")
    raw = AESGCM.generate_key(bit_length=256)
    kek_id, wrapped = get_provider().wrap(raw, associated_data=crypto.dek_associated_data(alice.pk, "profile", 2))
    DataKey.objects.create(subject_id=alice.pk, data_class="profile", version=2, kek_id=kek_id, wrapped=wrapped)
    fill(alice, clothing_size="M", city="Delft")  # under the newest
    versions = {bytes(v.value.ciphertext)[1:5] for v in ProfileValue.objects.filter(subject_id=alice.pk)}
    assert versions == {(1).to_bytes(4), (2).to_bytes(4)}
    provider, unwraps = get_provider(), []
    unwrap = provider.unwrap
    monkeypatch.setattr(provider, "unwrap", lambda *a, **k: unwraps.append(1) or unwrap(*a, **k))

    found = profile_read_many(
        subject_ids=[alice.pk],
        fields=["shoe_size", "given_name", "clothing_size", "city"],
        purpose="personalization",
        actor=SHOP,
    )

    assert found == {alice.pk: {"shoe_size": "40", "given_name": "Ada", "clothing_size": "M", "city": "Delft"}}
    assert len(unwraps) == 2  # one per data key version, not one per value


def test_whole_numbers_are_checked_strictly():
    from profiles.models import FieldDefinition
    from profiles.types import value_clean

    field = FieldDefinition(key="children", field_type="integer")
    assert value_clean(field, " -12 ") == -12
    for bad in ("+-5", "--3", "²", "1e3", "12.0", True, ""):
        with pytest.raises(InvalidValue):
            value_clean(field, bad)


def test_a_document_written_twice_at_once_keeps_the_later(alice):
    """The replace is delete-then-insert; an insert that meets a concurrent writer's row replaces it."""
    from unittest import mock

    from django.db.models import QuerySet

    grant(alice, "personalization")

    def write(likes):
        return profile_record_write(
            subject_id=alice.pk,
            kind="social_profile",
            shape=RecordKind.Shape.DOCUMENT,
            body={"likes": likes},
            source=Source.SOCIAL,
            source_name="github",
            actor=Actor.system("social-import"),
        )

    write(["running"])
    # As if a concurrent writer's row arrived between this writer's delete and its insert: the
    # first delete finds nothing, the insert meets the unique constraint, and the retry replaces.
    real_delete = QuerySet.delete
    calls = []

    def first_delete_misses(queryset):
        calls.append(1)
        return (0, {}) if len(calls) == 1 else real_delete(queryset)

    with mock.patch.object(QuerySet, "delete", first_delete_misses):
        write(["yoga"])
    assert len(calls) == 2
    documents = profile_records_read(subject_id=alice.pk, purpose="personalization", actor=SHOP, shape="document")
    assert [d.body for d in documents] == [{"likes": ["yoga"]}]


def test_lifting_a_restriction_lets_marketing_read_again(alice):
    from profiles.services import profile_restriction_lift

    fill(alice, shoe_size="42")
    grant(alice, "personalization")
    staff = Actor.staff(uuid.uuid4())
    profile_restrict(subject_id=alice.pk, actor=staff)

    assert profile_restriction_lift(subject_id=alice.pk, actor=staff) is True
    assert profile_restriction_lift(subject_id=alice.pk, actor=staff) is False
    read = profile_read(subject_id=alice.pk, fields=["shoe_size"], purpose="personalization", actor=SHOP)
    assert read["shoe_size"].value == "42"
    assert AuditEntry.objects.filter(action="profile.restriction_lift").count() == 1


def _code_of(error, param):
    return next(problem.code for problem in error.problems if problem.param == param)
