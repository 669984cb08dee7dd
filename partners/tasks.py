"""Celery tasks of the partners app: thin and idempotent, each calling a service. They import
the services inside their bodies: the services enqueue these tasks, so a top-level import would
be a cycle."""

import uuid
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

# Worth retrying: the broker or the database did not answer this time.
SEGMENT_TRANSIENT = (ConnectionError, TimeoutError, OperationalError, InterfaceError)
# Batches of a segment computation per task run: a long computation is a chain of short tasks,
# each well inside the task time limit, instead of one that a restart would redo from the start.
SEGMENT_BATCHES_PER_TASK = 25


@shared_task(
    name="partners.segment_compute",
    acks_late=True,
    autoretry_for=SEGMENT_TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def segment_compute(segment_id: str, run: str) -> bool:
    """Compute a segment's members, some batches per run, then enqueue the rest. The run id
    claims the work: a refresh starts a new run and this one stops at its next batch; a message
    delivered twice resumes from the segment's cursor (each batch locks the segment row)."""
    from partners.services import segment_compute as compute

    done = compute(segment_id=uuid.UUID(segment_id), run=uuid.UUID(run), max_batches=SEGMENT_BATCHES_PER_TASK)
    if not done:
        segment_compute.delay(segment_id, run)
    return done


@shared_task(name="partners.segment_members_expire")
def segment_members_expire() -> int:
    """Periodic (Celery beat, hourly): delete segment members past their expiry."""
    from partners.services import segment_members_expire as expire

    return expire()


TRANSIENT = (ConnectionError, TimeoutError, OperationalError, InterfaceError)
SEND_BATCH = 50  # deliveries per send task: a slow receiver holds up a few, not all


@shared_task(name="partners.webhooks_fanout", acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True)
def webhooks_fanout() -> int:
    """Periodic (Celery beat, every few seconds): outbox events into webhook deliveries, handed
    at once to `webhooks_send` in small batches; then the delivery log's retention. Safe on many
    workers (outbox claims, unique rows)."""
    from partners.services import webhook_log_purge
    from partners.services import webhooks_fanout as fanout

    made = fanout()
    for start in range(0, len(made), SEND_BATCH):
        webhooks_send.delay([str(i) for i in made[start : start + SEND_BATCH]])
    webhook_log_purge()
    return len(made)


@shared_task(name="partners.webhooks_send", acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True)
def webhooks_send(delivery_ids: list[str] | None = None) -> dict[str, Any]:
    """Periodic (Celery beat), and enqueued after a trigger or a replay: send the deliveries that
    are due (these only, if named). Each is claimed with a conditional update first."""
    from partners.services import webhook_deliveries_send

    ids = None if delivery_ids is None else [uuid.UUID(i) for i in delivery_ids]
    return webhook_deliveries_send(delivery_ids=ids, limit=200 if ids is None else len(ids))


@shared_task(name="partners.ingestion_requests_purge")
def ingestion_requests_purge() -> int:
    """Periodic (Celery beat): forget the kept answers of event ingestions whose
    Idempotency-Key expired. Deleting what is already gone is a no-op, so runs may overlap."""
    from partners.services import partner_ingestion_requests_purge

    return partner_ingestion_requests_purge()
