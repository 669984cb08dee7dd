"""The outbox of domain events (vault/outbox.py): written in the caller's transaction, claimed for
a lease by one consumer at a time, marked delivered."""

import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from vault import outbox
from vault.models import OutboxEvent
from vault.outbox import OutboxPayloadInvalid, outbox_claim, outbox_emit, outbox_mark_delivered

pytestmark = pytest.mark.django_db


def test_an_event_keeps_its_topic_and_opaque_ids():
    subject = uuid.uuid4()
    event = outbox_emit(topic="subject.erased", payload={"subject_id": subject, "keys": 3, "classes": ["profile"]})
    stored = OutboxEvent.objects.get(pk=event.pk)
    assert stored.topic == "subject.erased"
    assert stored.payload == {"subject_id": str(subject), "keys": 3, "classes": ["profile"]}
    assert stored.delivered_at is None and stored.attempts == 0


def erase_and_fail() -> None:
    with transaction.atomic():
        outbox_emit(topic="subject.erased", payload={"subject_id": uuid.uuid4()})
        raise RuntimeError("the erasure failed")


def test_an_event_rolls_back_with_the_change_it_announces():
    with pytest.raises(RuntimeError):
        erase_and_fail()
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"profile": {"name": "Ada"}},  # nested objects: free-form data
        {"note": "x" * 200},  # prose, not an id
        {"when": timezone.now()},  # not JSON
        {"": "id"},
        ["not", "an", "object"],
    ],
)
def test_a_payload_that_is_not_a_flat_object_of_ids_is_refused(payload):
    with pytest.raises(OutboxPayloadInvalid) as caught:
        outbox_emit(topic="subject.erased", payload=payload)
    assert caught.value.code == "outbox_payload_invalid"
    assert not OutboxEvent.objects.exists()


def test_a_topic_must_be_named():
    with pytest.raises(OutboxPayloadInvalid, match="topic"):
        outbox_emit(topic="", payload={})


def test_claims_take_the_oldest_of_their_topic_once_per_lease():
    events = [outbox_emit(topic="subject.erased", payload={"n": n}) for n in range(3)]
    outbox_emit(topic="other.topic", payload={})

    first = outbox_claim(topic="subject.erased", limit=2)
    assert [e.id for e in first] == [e.id for e in events[:2]]
    assert all(e.attempts == 1 and e.claimed_until is not None for e in first)
    second = outbox_claim(topic="subject.erased", limit=5)
    assert [e.id for e in second] == [events[2].id]  # the claimed ones are not handed out again
    assert outbox_claim(topic="subject.erased", limit=5) == []
    assert outbox_claim(topic="subject.erased", limit=0) == []


def test_an_event_whose_lease_ran_out_is_claimed_again_until_delivered(monkeypatch):
    event = outbox_emit(topic="subject.erased", payload={"subject_id": uuid.uuid4()})
    assert [e.id for e in outbox_claim(topic="subject.erased", limit=10, lease_seconds=60)] == [event.id]

    later = timezone.now() + timedelta(seconds=61)
    monkeypatch.setattr(outbox.timezone, "now", lambda: later)  # the consumer died; its lease ran out
    (again,) = outbox_claim(topic="subject.erased", limit=10)
    assert again.id == event.id and again.attempts == 2

    assert outbox_mark_delivered(event_ids=[event.id]) == 1
    assert outbox_mark_delivered(event_ids=[event.id]) == 0
    monkeypatch.setattr(outbox.timezone, "now", lambda: later + timedelta(days=1))
    assert outbox_claim(topic="subject.erased", limit=10) == []
    delivered = OutboxEvent.objects.get(pk=event.pk)
    assert delivered.delivered_at == later and delivered.claim_token is None


def test_a_claim_returns_only_what_it_won(monkeypatch):
    """Two consumers see the same free event; the one whose conditional update lands second gets
    nothing instead of the other's event."""
    event = outbox_emit(topic="subject.erased", payload={})
    real_filter = OutboxEvent.objects.filter
    raced: list = []
    racing = []

    def filter_then_race(*args, **kwargs):
        if "id__in" in kwargs and not racing:  # between choosing and claiming, another consumer claims
            racing.append(True)
            raced.extend(outbox_claim(topic="subject.erased", limit=1))
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(OutboxEvent.objects, "filter", filter_then_race)
    assert outbox_claim(topic="subject.erased", limit=1) == []
    assert [e.id for e in raced] == [event.id]
