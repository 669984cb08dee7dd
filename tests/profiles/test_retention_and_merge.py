import datetime
import uuid

import pytest
from django.core.management import call_command
from django.utils import timezone

from consent.models import Method
from consent.selectors import consent_is_granted
from consent.services import consent_withdraw
from profiles.errors import MergeError
from profiles.gate import RIGHTS_PURPOSE, Actor, profile_history_read, profile_read, profile_record_write
from profiles.models import ProfileEvent, ProfileValue, ProfileValueHistory, RecordKind, Source
from profiles.services import profile_merge, profile_merge_undo, retention_run
from tests.factories import fill, grant
from vault.audit import audit_verify
from vault.models import AuditEntry

pytestmark = pytest.mark.usefixtures("schema")
STAFF = Actor.staff(uuid.uuid4())


def own(person, *fields):
    read = profile_read(subject_id=person.pk, fields=fields, purpose=RIGHTS_PURPOSE, actor=Actor.person(person.pk))
    return {key: held.value for key, held in read.items()}


def order(person, body, days_ago=0):
    return profile_record_write(
        subject_id=person.pk,
        kind="order",
        shape=RecordKind.Shape.EVENT,
        body=body,
        source=Source.PARTNER,
        actor=Actor.partner("shop"),
        occurred_at=timezone.now() - datetime.timedelta(days=days_ago),
    )


# --- Retention ----------------------------------------------------------------------------------
def test_retention_deletes_only_what_is_past_its_period_in_batches(alice, bob):
    fill(alice, city="Leiden", given_name="Ada")
    fill(bob, city="Delft")
    ProfileValue.objects.filter(definition__key="city").update(expires_at=timezone.now() - datetime.timedelta(days=1))
    grant(alice, "personalization")
    order(alice, {"n": 1}, days_ago=800)  # orders are kept two years
    order(alice, {"n": 2})

    dry = retention_run(dry_run=True)
    assert dry.counts["profilevalue"] == {"city": 2}
    assert dry.counts["profileevent"] == {"order": 1}
    assert ProfileValue.objects.count() == 3  # a dry run deletes nothing

    report = retention_run(batch_size=1)

    assert report.total == 3
    assert own(alice, "city", "given_name") == {"given_name": "Ada"}
    assert ProfileEvent.objects.count() == 1
    purges = AuditEntry.objects.filter(action="profile.retention_purge")
    assert sorted(entry.fields[0] for entry in purges) == [
        "profileevent.order",
        "profilevalue.city",
        "profilevalue.city",
    ]
    assert audit_verify().ok


def test_retention_command_shows_what_would_go(alice, capsys):
    fill(alice, city="Leiden")
    ProfileValue.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))

    call_command("retention_run", "--dry-run")
    out = capsys.readouterr().out
    assert "Would delete 1 row(s)" in out
    assert "city" in out
    assert ProfileValue.objects.count() == 1
    call_command("retention_run")
    assert "Deleted 1 row(s)" in capsys.readouterr().out
    assert not ProfileValue.objects.exists()


def test_retention_task_runs_the_service(alice):
    from profiles.tasks import retention_run as task

    fill(alice, city="Leiden")
    ProfileValue.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert task.apply().get()["deleted"] == 1


# --- Identity resolution ------------------------------------------------------------------------
def test_merge_moves_the_profile_under_the_survivors_key(alice, bob):
    fill(alice, given_name="Ada", city="Leiden")
    fill(bob, city="Delft", shoe_size="38")
    grant(bob, "personalization")
    order(bob, {"order": "B-1"})

    merge = profile_merge(survivor_id=alice.pk, merged_id=bob.pk, actor=STAFF, reason="staff")

    assert own(alice, "given_name", "city", "shoe_size") == {"given_name": "Ada", "city": "Leiden", "shoe_size": "38"}
    assert [(item.key, item.value) for item in profile_history_read(subject_id=alice.pk, actor=STAFF)] == [
        ("city", "Delft")
    ]
    assert own(bob, "city", "shoe_size") == {}
    assert ProfileEvent.objects.get().subject_id == alice.pk
    assert merge.undo_until > timezone.now()
    assert audit_verify().ok


def test_merge_keeps_the_most_restrictive_consent(alice, bob):
    grant(alice, "personalization", "analytics")
    grant(bob, "personalization")
    consent_withdraw(subject_id=bob.pk, purpose="personalization", method=Method.WEB_FORM)

    profile_merge(survivor_id=alice.pk, merged_id=bob.pk, actor=STAFF, reason="staff")

    assert not consent_is_granted(subject_id=alice.pk, purpose="personalization")
    assert consent_is_granted(subject_id=alice.pk, purpose="analytics")  # bob never said no to it


def test_a_merge_can_be_undone_within_the_grace_period(alice, bob, settings):
    fill(alice, city="Leiden")
    fill(bob, city="Delft", shoe_size="38")
    merge = profile_merge(survivor_id=alice.pk, merged_id=bob.pk, actor=STAFF, reason="staff")

    profile_merge_undo(merge_id=merge.pk, actor=STAFF)

    assert own(alice, "city", "shoe_size") == {"city": "Leiden"}
    assert own(bob, "city", "shoe_size") == {"city": "Delft", "shoe_size": "38"}
    assert not ProfileValueHistory.objects.exists()
    with pytest.raises(MergeError):
        profile_merge_undo(merge_id=merge.pk, actor=STAFF)


def test_a_merge_cannot_be_undone_after_the_grace_period(alice, bob, settings):
    settings.VAULT_MERGE_UNDO_DAYS = 0
    merge = profile_merge(survivor_id=alice.pk, merged_id=bob.pk, actor=STAFF, reason="staff")
    with pytest.raises(MergeError):
        profile_merge_undo(merge_id=merge.pk, actor=STAFF)


def test_a_profile_is_not_merged_into_itself(alice):
    with pytest.raises(MergeError):
        profile_merge(survivor_id=alice.pk, merged_id=alice.pk, actor=STAFF, reason="staff")


def test_shortening_a_fields_retention_applies_to_stored_values(alice):
    from profiles.services import field_definition_update

    fill(alice, city="Leiden")
    fill(alice, city="Delft")  # Leiden goes to the history
    field_definition_update(key="city", retention_days=1, actor=STAFF)

    soon = timezone.now() + datetime.timedelta(days=2)
    assert ProfileValue.objects.get(definition__key="city").expires_at < soon
    assert ProfileValueHistory.objects.get(definition__key="city").expires_at < soon
    field_definition_update(key="city", retention_days=3650, actor=STAFF)
    assert ProfileValue.objects.get(definition__key="city").expires_at < soon, "a longer period extends nothing"


def test_an_undo_is_refused_when_a_moved_value_changed_since(alice, bob):
    fill(bob, shoe_size="38")
    merge = profile_merge(survivor_id=alice.pk, merged_id=bob.pk, actor=STAFF, reason="staff")
    fill(alice, shoe_size="40")  # bob's 38 is now alice's earlier value

    with pytest.raises(MergeError):
        profile_merge_undo(merge_id=merge.pk, actor=STAFF)

    assert own(alice, "shoe_size") == {"shoe_size": "40"}
    assert [(v.key, v.value) for v in profile_history_read(subject_id=alice.pk, actor=STAFF)] == [("shoe_size", "38")]
