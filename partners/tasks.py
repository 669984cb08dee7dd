"""Celery tasks of the partners app: thin and idempotent, each calling a service. They import the
services inside their bodies: the services enqueue these tasks, so a top-level import would be
a cycle."""

import uuid

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


@shared_task(name="partners.ingestion_requests_purge")
def ingestion_requests_purge() -> int:
    """Periodic (Celery beat): forget the kept answers of event ingestions whose
    Idempotency-Key expired. Deleting what is already gone is a no-op, so runs may overlap."""
    from partners.services import partner_ingestion_requests_purge

    return partner_ingestion_requests_purge()
