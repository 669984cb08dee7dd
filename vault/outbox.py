"""The outbox of domain events (DESIGN.md 3): how a layer tells the layers above it what happened
without importing them, and without losing the news when a process dies after its commit.

`outbox_emit` writes an event in the caller's transaction (it commits or rolls back with the
change it announces). A consumer (the partners app, passing erasures on to partners) claims a
batch with `outbox_claim`, delivers it, then calls `outbox_mark_delivered`. A claim lasts
`lease_seconds`: events of a consumer that died are claimed again after it, so delivery is at
least once, and consumers key their work on the event id.

Payloads hold opaque ids only (subject UUIDs, partner client ids, counts), never personal data:
a flat JSON object whose values are short strings, numbers, booleans, null or lists of those.
"""

import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db.models import F, Q
from django.utils import timezone

from vault.errors import ApplicationError
from vault.models import OutboxEvent

MAX_TOPIC_LENGTH = 64
MAX_PAYLOAD_TEXT = 128  # an id fits; a paragraph about someone does not


class OutboxPayloadInvalid(ApplicationError):
    """A payload that is not a flat object of opaque ids: refused, so none slips into the outbox."""

    code = "outbox_payload_invalid"
    message = "An outbox event's payload must be a flat object of opaque ids."
    param_name = "payload"


def _scalar(value: Any) -> str | int | float | bool | None:
    if isinstance(value, uuid.UUID):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and len(value) <= MAX_PAYLOAD_TEXT:
        return value
    raise OutboxPayloadInvalid()


def _clean(payload: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise OutboxPayloadInvalid()
    clean: dict[str, Any] = {}
    for key, value in payload.items():
        if not isinstance(key, str) or not key or len(key) > MAX_TOPIC_LENGTH:
            raise OutboxPayloadInvalid()
        clean[key] = [_scalar(item) for item in value] if isinstance(value, list | tuple) else _scalar(value)
    return clean


def outbox_emit(*, topic: str, payload: dict[str, Any]) -> OutboxEvent:
    """Record a domain event (e.g. "subject.erased", {"subject_id": ...}) in the caller's
    transaction. UUIDs in the payload are stored as text."""
    if not topic or len(topic) > MAX_TOPIC_LENGTH:
        raise OutboxPayloadInvalid("An outbox topic must be 1 to 64 characters.", param="topic")
    return OutboxEvent.objects.create(topic=topic, payload=_clean(payload))


def outbox_claim(*, topic: str, limit: int, lease_seconds: int = 300) -> list[OutboxEvent]:
    """Up to `limit` undelivered events of `topic`, oldest first, claimed for `lease_seconds`:
    no other claim returns them until the lease ends (they are then claimed again unless marked
    delivered). Each claim counts one attempt. Safe on many workers at once: the claim is one
    conditional UPDATE, and an event another worker claimed in between is simply not returned."""
    if limit < 1:
        return []
    now = timezone.now()
    free = Q(delivered_at__isnull=True, topic=topic) & (Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
    pending = OutboxEvent.objects.filter(free).order_by("created_at", "id")
    candidates = list(pending.values_list("id", flat=True)[:limit])
    if not candidates:
        return []
    token = uuid.uuid4()
    OutboxEvent.objects.filter(free, id__in=candidates).update(
        claim_token=token, claimed_until=now + timedelta(seconds=lease_seconds), attempts=F("attempts") + 1
    )
    return list(OutboxEvent.objects.filter(claim_token=token).order_by("created_at", "id"))


def outbox_mark_delivered(*, event_ids: Iterable[uuid.UUID]) -> int:
    """Mark events delivered (they are never claimed again); returns how many were not already."""
    ids = list(event_ids)
    if not ids:
        return 0
    return OutboxEvent.objects.filter(id__in=ids, delivered_at__isnull=True).update(
        delivered_at=timezone.now(), claim_token=None, claimed_until=None
    )
