"""Erasing a person's consent ledger (`consent.services.consent_ledger_erase`): their events and
projection rows go, pending requests included, the projection stays in step with the ledger at
every step, and nobody else's choices change."""

import re
import uuid
from datetime import date

import pytest
from django.apps import apps
from django.core import mail
from django.core.management import call_command
from django.db import models

from consent.errors import InvalidLink
from consent.models import ConsentEvent, ConsentState, ConsentStatus, Method
from consent.selectors import consent_is_granted
from consent.services import (
    consent_grant,
    consent_ledger_erase,
    consent_link_state,
    consent_parental_request,
    consent_request,
    consent_withdraw,
)
from tests.factories import UserFactory

TOKEN = re.compile(r"/consent/(confirm|parental)/([^/\s]+)/")
WEB = {"method": Method.WEB_FORM}


def _token_in_last_mail() -> str:
    found = TOKEN.search(str(mail.outbox[-1].body))
    assert found
    return found.group(2)


def _rows_naming(subject_id: uuid.UUID) -> dict[str, int]:
    """Rows of any consent table with a UUID column holding `subject_id`: every column is looked
    at, so a table added later is covered."""
    found: dict[str, int] = {}
    for model in apps.get_app_config("consent").get_models():
        condition = models.Q()
        for field in model._meta.concrete_fields:
            if isinstance(field, models.UUIDField):
                condition |= models.Q(**{field.attname: subject_id})
        if condition and (count := model._default_manager.filter(condition).count()):
            found[model._meta.label] = count
    return found


def _check_in_step(capsys) -> None:
    call_command("consent_rebuild", "--check")  # raises CommandError when out of step
    assert "OK:" in capsys.readouterr().out


def _snapshot(subject_id: uuid.UUID) -> list[tuple]:
    events = ConsentEvent.objects.filter(subject_id=subject_id).values_list("pk", "seq", "event_type")
    states = ConsentState.objects.filter(subject_id=subject_id).values_list("pk", "status", "last_seq")
    return sorted(events) + sorted(states)


@pytest.fixture
def ledgers(alice, bob, newsletter, ad_sharing, double_opt_in):
    """Alice and Bob, each with a history across three purposes; Alice also has a double opt-in
    request pending (its link in the last mail)."""
    for person in (alice, bob):
        consent_grant(subject_id=person.id, purpose="newsletter", **WEB)
        consent_withdraw(subject_id=person.id, purpose="newsletter", **WEB)
        consent_grant(subject_id=person.id, purpose="newsletter", **WEB)
        consent_grant(subject_id=person.id, purpose="ad-sharing", **WEB)
        consent_withdraw(subject_id=person.id, purpose="ad-sharing", method=Method.GPC)
    consent_request(subject_id=alice.id, purpose="mailings")
    return _token_in_last_mail()


def test_erasure_deletes_the_persons_ledger_and_projection_and_nobody_elses(alice, bob, ledgers, capsys):
    bob_before = _snapshot(bob.id)
    assert _rows_naming(alice.id) == {"consent.ConsentEvent": 6, "consent.ConsentState": 3}

    # One superseded event per call: the projection is in step with the ledger after each.
    calls = []
    while deleted := consent_ledger_erase(subject_id=alice.id, batch_size=1):
        calls.append(deleted)
        _check_in_step(capsys)
    # The 3 superseded events one by one, then the latest event of each of the three purposes
    # with its projection row.
    assert calls == [1, 1, 1, 6]
    assert sum(calls) == 6 + 3

    assert _rows_naming(alice.id) == {}
    assert not consent_is_granted(subject_id=alice.id, purpose="newsletter")
    assert _snapshot(bob.id) == bob_before
    assert consent_is_granted(subject_id=bob.id, purpose="newsletter")
    _check_in_step(capsys)


def test_a_link_mailed_before_the_erasure_names_nothing_afterwards(alice, ledgers):
    token = ledgers
    assert consent_link_state(token=token, method=Method.DOUBLE_OPT_IN).status == ConsentStatus.PENDING
    consent_ledger_erase(subject_id=alice.id)
    with pytest.raises(InvalidLink):
        consent_link_state(token=token, method=Method.DOUBLE_OPT_IN)


def test_a_pending_parental_request_is_erased_too(profile_schema, capsys):
    child = UserFactory.create()
    consent_parental_request(
        subject_id=child.id, purpose="personalization", parent_email="parent@example.net", birth_date=date(2015, 6, 1)
    )
    assert ConsentState.objects.get(subject_id=child.id).status == ConsentStatus.PENDING
    token = _token_in_last_mail()

    assert consent_ledger_erase(subject_id=child.id) == 2  # the request event and its projection row
    assert _rows_naming(child.id) == {}
    with pytest.raises(InvalidLink):
        consent_link_state(token=token, method=Method.PARENTAL_CONSENT)
    _check_in_step(capsys)


def test_erasing_twice_or_someone_without_a_ledger_deletes_nothing(alice, ledgers):
    assert consent_ledger_erase(subject_id=alice.id) == 9
    assert consent_ledger_erase(subject_id=alice.id) == 0
    assert consent_ledger_erase(subject_id=uuid.uuid4()) == 0


def test_the_person_can_consent_again_as_a_new_ledger_after_erasure(alice, ledgers):
    """Nothing of the erased ledger is left to collide with (sequence numbers start again)."""
    consent_ledger_erase(subject_id=alice.id)
    event = consent_grant(subject_id=alice.id, purpose="newsletter", **WEB)
    assert event.seq == 1


def test_a_call_is_a_constant_number_of_queries(alice, bob, newsletter, django_assert_max_num_queries):
    consent_grant(subject_id=alice.id, purpose="newsletter", **WEB)
    consent_withdraw(subject_id=alice.id, purpose="newsletter", **WEB)  # one superseded event, and 40 of Bob's
    consent_grant(subject_id=bob.id, purpose="newsletter", **WEB)
    for _ in range(20):
        consent_withdraw(subject_id=bob.id, purpose="newsletter", **WEB)
        consent_grant(subject_id=bob.id, purpose="newsletter", **WEB)
    with django_assert_max_num_queries(20) as few:
        consent_ledger_erase(subject_id=alice.id)
    with django_assert_max_num_queries(len(few.captured_queries)):
        consent_ledger_erase(subject_id=bob.id)
    assert not ConsentEvent.objects.exists()


def test_a_batch_size_below_one_is_refused(alice):
    with pytest.raises(ValueError, match="batch_size"):
        consent_ledger_erase(subject_id=alice.id, batch_size=0)
