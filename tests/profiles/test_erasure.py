"""Erasing a person's profile (`profiles.services.profile_data_erase`): every row about them goes,
in bounded batches, after their keys are destroyed, and nobody else's row is touched."""

import datetime
import uuid

import pytest
from django.apps import apps
from django.db import models
from django.utils import timezone

from profiles.gate import RIGHTS_PURPOSE, Actor, profile_read, profile_record_write, profile_write
from profiles.models import (
    FieldDefinitionVersion,
    Merge,
    ProfileDocument,
    ProfileEvent,
    ProfileValue,
    ProfileValueHistory,
    RecordKind,
    Restriction,
    Source,
)
from profiles.services import field_definition_update, profile_data_erase, profile_merge, profile_restrict
from tests.factories import fill, grant
from vault.models import AuditEntry
from vault.services import subject_keys_shred

pytestmark = pytest.mark.usefixtures("schema")


def _event(person, n: int) -> None:
    profile_record_write(
        subject_id=person.pk,
        kind="order",
        shape=RecordKind.Shape.EVENT,
        body={"n": n},
        source=Source.PARTNER,
        actor=Actor.partner("shop"),
        occurred_at=timezone.now() - datetime.timedelta(minutes=n),
    )


def _document(person) -> None:
    profile_record_write(
        subject_id=person.pk,
        kind="social_profile",
        shape=RecordKind.Shape.DOCUMENT,
        body={"likes": ["chess"]},
        source=Source.SOCIAL,
        source_name="github",
        actor=Actor.system("social-import"),
    )


def _a_full_profile(person) -> None:
    """Values, an earlier value, a document, events and a restriction."""
    grant(person, "personalization")
    fill(person, given_name="Ada", city="Leiden")
    fill(person, city="Delft")  # Leiden goes to the history
    _document(person)
    for n in range(5):
        _event(person, n)
    profile_restrict(subject_id=person.pk, actor=Actor.system("test"))


def _rows_naming(subject_id: uuid.UUID) -> dict[str, int]:
    """Rows of any profiles table with a UUID column holding `subject_id` (or a text column
    holding it as text): found by looking at every column, so a table added later is covered."""
    found: dict[str, int] = {}
    for model in apps.get_app_config("profiles").get_models():
        condition = models.Q()
        for field in model._meta.concrete_fields:
            if isinstance(field, models.UUIDField):
                condition |= models.Q(**{field.attname: subject_id})
            elif isinstance(field, models.CharField):
                condition |= models.Q(**{field.attname: str(subject_id)})
        if condition and (count := model._default_manager.filter(condition).count()):
            found[model._meta.label] = count
    return found


def test_erasure_deletes_every_profile_row_about_the_person_and_nobody_elses(alice, bob):
    _a_full_profile(alice)
    _a_full_profile(bob)
    carol_id = uuid.uuid4()
    profile_write(
        subject_id=carol_id,
        values={"city": "Gouda"},
        source=Source.IMPORT,
        purpose=RIGHTS_PURPOSE,
        actor=Actor.system("import"),
    )
    profile_merge(survivor_id=alice.pk, merged_id=carol_id, actor=Actor.staff(uuid.uuid4()), reason="staff")
    assert Merge.objects.filter(survivor_id=alice.pk).exists()
    bob_rows = _rows_naming(bob.pk)
    assert _rows_naming(alice.pk)

    subject_keys_shred(subject_id=alice.pk, actor_type="system", actor_id="test")  # the keys go first
    while profile_data_erase(subject_id=alice.pk):
        pass

    assert _rows_naming(alice.pk) == {}
    assert not Merge.objects.filter(merged_id=carol_id).exists()
    assert _rows_naming(bob.pk) == bob_rows
    read = profile_read(subject_id=bob.pk, fields=["city"], purpose=RIGHTS_PURPOSE, actor=Actor.person(bob.pk))
    assert read["city"].value == "Delft"


def test_erasure_works_in_bounded_batches_and_says_when_it_is_done(alice):
    _a_full_profile(alice)
    assert ProfileEvent.objects.filter(subject_id=alice.pk).count() == 5
    # values 2, history 1, document 1, events 2 (of 5), restriction 1
    assert profile_data_erase(subject_id=alice.pk, batch_size=2) == 7
    assert ProfileEvent.objects.filter(subject_id=alice.pk).count() == 3
    assert profile_data_erase(subject_id=alice.pk, batch_size=2) == 2
    assert profile_data_erase(subject_id=alice.pk, batch_size=2) == 1
    assert profile_data_erase(subject_id=alice.pk, batch_size=2) == 0
    assert profile_data_erase(subject_id=alice.pk) == 0  # idempotent
    for model in (ProfileValue, ProfileValueHistory, ProfileDocument, ProfileEvent, Restriction):
        assert not model.objects.filter(subject_id=alice.pk).exists(), model


def test_a_batch_is_a_constant_number_of_queries_whatever_the_volume(alice, bob, django_assert_max_num_queries):
    grant(alice, "personalization")
    grant(bob, "personalization")
    _event(alice, 1)
    for n in range(40):
        _event(bob, n)
    with django_assert_max_num_queries(30) as few:
        profile_data_erase(subject_id=alice.pk)
    with django_assert_max_num_queries(len(few.captured_queries)):
        profile_data_erase(subject_id=bob.pk)


def test_erasure_needs_no_key_and_writes_no_audit_entry(alice):
    _a_full_profile(alice)
    subject_keys_shred(subject_id=alice.pk, actor_type="system", actor_id="test")
    entries = AuditEntry.objects.count()
    assert profile_data_erase(subject_id=alice.pk) > 0
    assert AuditEntry.objects.count() == entries


def test_the_merged_side_of_a_merge_is_erased_too(alice):
    merged_id = uuid.uuid4()
    profile_merge(survivor_id=alice.pk, merged_id=merged_id, actor=Actor.staff(uuid.uuid4()), reason="staff")
    profile_data_erase(subject_id=merged_id)
    assert not Merge.objects.exists()


def test_a_staff_members_schema_changes_no_longer_name_them(staff):
    field_definition_update(key="city", actor=Actor.staff(staff.pk), label="Town")
    version = FieldDefinitionVersion.objects.get(changed_by=str(staff.pk))
    assert profile_data_erase(subject_id=staff.pk) == 1
    version.refresh_from_db()
    assert version.changed_by == "" and version.snapshot["label"] == "Town"


def test_a_batch_size_below_one_is_refused(alice):
    with pytest.raises(ValueError, match="batch_size"):
        profile_data_erase(subject_id=alice.pk, batch_size=0)
