"""The projection is a function of the ledger: rebuilding it gives back exactly what the services
kept in step, and repairs a damaged one."""

import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from consent.models import ConsentState, ConsentStatus, Method
from consent.services import (
    consent_grant,
    consent_projection_rebuild,
    consent_refuse,
    consent_withdraw,
    policy_version_publish,
)


def snapshot():
    return sorted(
        ConsentState.objects.values_list(
            "subject_id", "purpose__slug", "status", "policy_version__label", "last_seq", "changed_at"
        )
    )


@pytest.fixture
def history(alice, bob, newsletter, ad_sharing, fraud_checks):
    """A ledger with every kind of choice, two people, three purposes and a policy change."""
    web = {"method": Method.WEB_FORM}
    consent_grant(subject_id=alice.id, purpose="newsletter", **web)
    consent_grant(subject_id=bob.id, purpose="newsletter", **web)
    consent_withdraw(subject_id=bob.id, purpose="newsletter", **web)
    consent_grant(subject_id=alice.id, purpose="ad-sharing", **web)
    consent_withdraw(subject_id=alice.id, purpose="ad-sharing", method=Method.GPC)
    consent_refuse(subject_id=bob.id, purpose="ad-sharing", **web)
    consent_withdraw(subject_id=alice.id, purpose="fraud-checks", **web)
    policy_version_publish(purpose="newsletter", label="v2", text="Material change.", is_material=True)
    consent_grant(subject_id=alice.id, purpose="newsletter", **web)
    consent_grant(subject_id=bob.id, purpose="newsletter", **web)
    return snapshot()


def test_rebuilding_gives_the_same_state(history):
    assert len(history) == 5
    report = consent_projection_rebuild()
    assert report.in_step
    assert (report.events, report.unchanged) == (9, 5)
    assert snapshot() == history


def test_rebuilding_from_nothing_gives_the_same_state(history):
    ConsentState.objects.all().delete()
    report = consent_projection_rebuild()
    assert (report.created, report.updated, report.deleted) == (5, 0, 0)
    assert snapshot() == history


def test_rebuilding_repairs_a_damaged_projection(history, alice, newsletter):
    ConsentState.objects.filter(subject_id=alice.id, purpose__slug="ad-sharing").delete()
    ConsentState.objects.filter(subject_id=alice.id, purpose__slug="newsletter").update(
        status=ConsentStatus.WITHDRAWN, last_seq=1
    )
    ConsentState.objects.create(
        subject_id=uuid.uuid4(),
        purpose=newsletter,
        status=ConsentStatus.GRANTED,
        policy_version=newsletter.versions.first(),
        changed_at=history[0][-1],
    )
    dry = consent_projection_rebuild(dry_run=True)
    assert (dry.created, dry.updated, dry.deleted) == (1, 1, 1)
    assert snapshot() != history, "a dry run changes nothing"

    report = consent_projection_rebuild()
    assert (report.created, report.updated, report.deleted) == (1, 1, 1)
    assert snapshot() == history


def test_the_command_checks_and_rebuilds(history, alice, capsys):
    call_command("consent_rebuild", "--check")
    assert "OK: 9 events" in capsys.readouterr().out

    ConsentState.objects.filter(subject_id=alice.id).delete()
    with pytest.raises(CommandError, match="OUT OF STEP"):
        call_command("consent_rebuild", "--check")
    call_command("consent_rebuild", "--batch-size", "2")
    assert "Rebuilt: 9 events; projection rows: 3 missing" in capsys.readouterr().out
    assert snapshot() == history
    with pytest.raises(CommandError, match="at least 1"):
        call_command("consent_rebuild", "--batch-size", "0")
