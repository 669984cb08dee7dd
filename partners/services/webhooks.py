"""Webhooks to partner clients, signed as the Standard Webhooks specification says.

Two steps, both Celery beat tasks (partners/tasks.py), neither ever run inside a request:

- `webhooks_fanout` claims the core outbox's events (`consent.changed`, `profile.updated`,
  `subject.erased`) and turns each into one `WebhookDelivery` per client entitled to hear of it,
  with the person named by that client's pairwise id and no more than the client's scope allows.
  The deliveries and the outbox's "delivered" mark commit together, and a delivery is unique per
  (client, event, type), so an event claimed twice is fanned out once. After an erasure is fanned
  out, the partners app forgets the person (pairwise ids, preference index).
- `webhook_deliveries_send` POSTs the deliveries that are due (short timeouts), each claimed with a
  conditional update so two workers never send one twice; a failure is retried with exponential
  backoff, then marked failed after `PARTNERS_WEBHOOK_MAX_ATTEMPTS`. Staff replay deliveries from
  the admin (`webhook_deliveries_replay`).
"""

import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import requests
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from standardwebhooks import Webhook

from consent.models import ConsentStatus
from consent.selectors import consent_is_granted
from partners.models import (
    PairwiseId,
    PartnerClient,
    PreferenceToken,
    WebhookDelivery,
    WebhookEventType,
    WebhookStatus,
)
from partners.secrets import webhook_secret_unseal
from partners.services.clients import pairwise_ids_for
from partners.services.triggers import MATCH_PURPOSE, PREFERENCE_FIELDS, preference_index_refresh
from profiles.gate import Actor
from profiles.selectors import unscoped_field_definitions
from vault.audit import audit_record
from vault.models import OutboxEvent
from vault.outbox import outbox_claim, outbox_mark_delivered

logger = logging.getLogger(__name__)

FANOUT_BATCH = 500
PREFERENCES = frozenset(PREFERENCE_FIELDS)
USER_AGENT = "vault-webhooks/1"


# --- Fan-out ------------------------------------------------------------------------------------


def webhook_receivers() -> list[PartnerClient]:
    """Active clients with somewhere to send webhooks and a secret to sign them."""
    return list(PartnerClient.objects.filter(is_active=True, webhook_secret__isnull=False).exclude(webhook_url=""))


def _known(client_ids: Iterable[uuid.UUID], subjects: Iterable[uuid.UUID]) -> dict[tuple[uuid.UUID, uuid.UUID], str]:
    """{(client, subject): pairwise} for the pairs a client has already been shown."""
    rows = PairwiseId.objects.filter(client_id__in=list(client_ids), subject_id__in=list(set(subjects)))
    return {(c, s): p for c, s, p in rows.values_list("client_id", "subject_id", "pairwise")}


def _about(events: Sequence[OutboxEvent]) -> list[tuple[OutboxEvent, uuid.UUID]]:
    """Each event with the person it is about; one without a valid subject id is skipped (and
    logged by event id), so a malformed event cannot block its topic for good."""
    pairs = []
    for event in events:
        try:
            pairs.append((event, uuid.UUID(str(event.payload["subject_id"]))))
        except (KeyError, ValueError, TypeError):
            logger.error("Outbox event %s (%s) names no subject; skipped", event.pk, event.topic)
    return pairs


def _delivery(client: PartnerClient, event: OutboxEvent, data: dict[str, Any]) -> WebhookDelivery:
    return WebhookDelivery(
        client=client, event_id=event.id, event_type=event.topic, payload=data, next_attempt_at=timezone.now()
    )


def _consent_changed(events: Sequence[OutboxEvent], clients: list[PartnerClient]) -> list[WebhookDelivery]:
    """To each client holding the purpose: the person, the purpose and its new state. A grant
    introduces the person to the client (a pairwise id is made); any other change goes only to
    clients that already know the person, since it tells a stranger nothing they may act on."""
    about = [(e, s) for e, s in _about(events) if {"purpose", "status"} <= set(e.payload)]
    known = _known([c.pk for c in clients], [s for _, s in about])
    rows = []
    for event, subject in about:
        purpose, state = event.payload["purpose"], event.payload["status"]
        for client in clients:
            if purpose not in client.purposes:
                continue
            pairwise = known.get((client.pk, subject))
            if pairwise is None and state == ConsentStatus.GRANTED:
                pairwise = pairwise_ids_for(client=client, subject_ids=[subject])[subject]
            if pairwise is not None:
                rows.append(_delivery(client, event, {"person": pairwise, "purpose": purpose, "status": state}))
    preference_index_refresh(subject_ids=[s for e, s in about if e.payload["purpose"] == MATCH_PURPOSE])
    return rows


def _profile_updated(events: Sequence[OutboxEvent], clients: list[PartnerClient]) -> list[WebhookDelivery]:
    """To each client that knows the person: the names of the changed fields in its scope that
    serve one of its purposes the person consents to. Never a value: the client reads them through
    the gate if it may."""
    about = _about(events)
    keys = {key for e, _ in about for key in e.payload.get("fields", [])}
    serves: dict[str, set[str]] = defaultdict(set)
    for key, purpose in unscoped_field_definitions().filter(key__in=keys).values_list("key", "purposes__slug"):
        if purpose:
            serves[key].add(purpose)
    known = _known([c.pk for c in clients], [s for _, s in about])
    consents: dict[tuple[uuid.UUID, str], bool] = {}

    def consented(subject: uuid.UUID, purpose: str) -> bool:
        if (subject, purpose) not in consents:
            consents[subject, purpose] = consent_is_granted(subject_id=subject, purpose=purpose)
        return consents[subject, purpose]

    rows = []
    for event, subject in about:
        changed = event.payload.get("fields", [])
        for client in clients:
            pairwise = known.get((client.pk, subject))
            if pairwise is None:
                continue
            named = [
                key
                for key in changed
                if key in client.fields and any(consented(subject, p) for p in serves[key] & set(client.purposes))
            ]
            if named:
                rows.append(_delivery(client, event, {"person": pairwise, "fields": named}))
    preference_index_refresh(subject_ids=[s for e, s in about if set(e.payload.get("fields", [])) & PREFERENCES])
    return rows


def _subject_erased(events: Sequence[OutboxEvent], clients: list[PartnerClient]) -> list[WebhookDelivery]:
    """To each client that knows the person: their pairwise id, so the client deletes its copy.
    Then the partners app forgets them: no row here refers to the erased person afterwards (the
    delivery itself holds the client's pairwise id only, until the log's retention ends)."""
    about = _about(events)
    subjects = [s for _, s in about]
    known = _known([c.pk for c in clients], subjects)
    rows = [
        _delivery(client, event, {"person": known[client.pk, subject]})
        for event, subject in about
        for client in clients
        if (client.pk, subject) in known
    ]
    PairwiseId.objects.filter(subject_id__in=subjects).delete()
    PreferenceToken.objects.filter(subject_id__in=subjects).delete()
    return rows


_FANOUT: dict[str, Callable[[Sequence[OutboxEvent], list[PartnerClient]], list[WebhookDelivery]]] = {
    WebhookEventType.CONSENT_CHANGED: _consent_changed,
    WebhookEventType.PROFILE_UPDATED: _profile_updated,
    WebhookEventType.SUBJECT_ERASED: _subject_erased,
}


def webhooks_fanout(*, limit: int = FANOUT_BATCH) -> list[uuid.UUID]:
    """Fan one batch of each topic's outbox events out into deliveries; returns the ids of the
    deliveries made. The deliveries, the partners app's own clean-up and the outbox's mark commit
    together: a worker dying half-way leaves the events to be claimed again, and the unique
    (client, event, type) makes a second fan-out add nothing."""
    made: list[uuid.UUID] = []
    clients = webhook_receivers()
    for topic, fan in _FANOUT.items():
        events = outbox_claim(topic=topic, limit=limit, lease_seconds=120)
        if not events:
            continue
        with transaction.atomic():
            rows = fan(events, clients)
            WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
            outbox_mark_delivered(event_ids=[e.id for e in events])
        made += [row.id for row in rows]
    return made


# --- Delivery -----------------------------------------------------------------------------------


def webhook_backoff(*, attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt: BASE, 2 BASE, 4 BASE... capped."""
    base = settings.PARTNERS_WEBHOOK_BACKOFF_SECONDS
    return timedelta(seconds=min(settings.PARTNERS_WEBHOOK_MAX_DELAY_SECONDS, base * 2 ** max(0, attempts - 1)))


def webhook_body(delivery: WebhookDelivery) -> bytes:
    """The Standard Webhooks payload: type, timestamp and data, as compact JSON."""
    envelope = {"type": delivery.event_type, "timestamp": delivery.created_at.isoformat(), "data": delivery.payload}
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode("utf-8")


def webhook_headers(*, delivery: WebhookDelivery, body: bytes, secret: str, at: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers (signed with the client's secret) and the content type."""
    return {
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(delivery.message_id, at, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def _post(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """One attempt: (status code, error name). Errors are named, never quoted (a receiver's
    answer could say anything)."""
    client = delivery.client
    if not client.is_active or not client.webhook_url or not client.webhook_secret:
        return None, "no_endpoint"
    body = webhook_body(delivery)
    headers = webhook_headers(
        delivery=delivery, body=body, secret=webhook_secret_unseal(client.webhook_secret), at=timezone.now()
    )
    timeout = (settings.PARTNERS_WEBHOOK_CONNECT_TIMEOUT, settings.PARTNERS_WEBHOOK_READ_TIMEOUT)
    try:
        response = requests.post(client.webhook_url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
    except requests.Timeout:
        return None, "timeout"
    except requests.ConnectionError:
        return None, "connection"
    except requests.RequestException:
        return None, "request"
    response.close()
    return response.status_code, "" if 200 <= response.status_code < 300 else f"http_{response.status_code}"


def webhook_delivery_attempt(*, delivery: WebhookDelivery) -> bool:
    """Send one delivery once and record the outcome; True when the receiver took it (2xx)."""
    code, error = _post(delivery)
    now = timezone.now()
    attempts = delivery.attempts + 1
    changes: dict[str, Any] = {"attempts": attempts, "last_status_code": code, "last_error": error}
    if not error:
        changes |= {"status": WebhookStatus.DELIVERED, "delivered_at": now, "next_attempt_at": None}
    elif attempts >= settings.PARTNERS_WEBHOOK_MAX_ATTEMPTS:
        changes |= {"status": WebhookStatus.FAILED, "next_attempt_at": None}
    else:
        changes |= {"next_attempt_at": now + webhook_backoff(attempts=attempts)}
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**changes)
    for name, value in changes.items():
        setattr(delivery, name, value)
    if error:
        logger.info("Webhook %s to client %s: attempt %s failed (%s)", delivery.pk, delivery.client_id, attempts, error)
    return not error


def _claim(delivery_ids: Sequence[uuid.UUID] | None, limit: int) -> list[WebhookDelivery]:
    """Due deliveries, each claimed by moving its next attempt past the time one attempt can take:
    a conditional update per row, so another worker's claim makes ours miss, not double-send."""
    now = timezone.now()
    due = WebhookDelivery.objects.filter(status=WebhookStatus.PENDING, next_attempt_at__lte=now)
    if delivery_ids is not None:
        due = due.filter(pk__in=list(delivery_ids))
    lease = now + timedelta(
        seconds=2 * (settings.PARTNERS_WEBHOOK_CONNECT_TIMEOUT + settings.PARTNERS_WEBHOOK_READ_TIMEOUT) + 30
    )
    claimed = []
    for delivery in due.select_related("client").order_by("next_attempt_at")[:limit]:
        seen = Q(pk=delivery.pk, status=WebhookStatus.PENDING, next_attempt_at=delivery.next_attempt_at)
        if WebhookDelivery.objects.filter(seen).update(next_attempt_at=lease):
            claimed.append(delivery)
    return claimed


def webhook_deliveries_send(*, delivery_ids: Sequence[uuid.UUID] | None = None, limit: int = 200) -> dict[str, int]:
    """Send up to `limit` due deliveries (of `delivery_ids` only, if given); returns counts of
    those delivered and of those that failed this attempt."""
    counts = {"delivered": 0, "retrying": 0}
    for delivery in _claim(delivery_ids, limit):
        counts["delivered" if webhook_delivery_attempt(delivery=delivery) else "retrying"] += 1
    return counts


def webhook_deliveries_dispatch(delivery_ids: Sequence[uuid.UUID]) -> None:
    """After the commit, ask a worker to send these now (with a broker; without one, the beat
    task's next run sends them), so no request ever waits on a receiver."""
    if not delivery_ids or settings.CELERY_TASK_ALWAYS_EAGER:
        return
    ids = [str(i) for i in delivery_ids]
    transaction.on_commit(lambda: current_app.send_task("partners.webhooks_send", kwargs={"delivery_ids": ids}))


def webhook_deliveries_replay(*, delivery_ids: Iterable[uuid.UUID], actor: Actor) -> int:
    """Send these deliveries again from the start (same `webhook-id`, so a receiver that handled
    one already can tell); audited per client. Returns how many were queued."""
    ids = list(delivery_ids)
    with transaction.atomic():
        rows = WebhookDelivery.objects.select_for_update().filter(pk__in=ids)
        slugs = sorted(set(rows.values_list("client__slug", flat=True)))
        count = rows.update(
            status=WebhookStatus.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error="", delivered_at=None
        )
        for slug in slugs:
            client_name = "client." + slug.replace("-", "_")
            audit_record(**actor.audit(), action="partners.webhook_replay", fields=[client_name])
    webhook_deliveries_dispatch(ids)
    return count


def webhook_log_purge(*, days: int | None = None) -> int:
    """Delete delivered and failed deliveries older than the log's retention."""
    cutoff = timezone.now() - timedelta(days=settings.PARTNERS_WEBHOOK_LOG_DAYS if days is None else days)
    done = WebhookDelivery.objects.filter(created_at__lt=cutoff).exclude(status=WebhookStatus.PENDING)
    deleted, _ = done.delete()
    return deleted
