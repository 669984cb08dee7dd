"""Celery tasks of the rights app: thin and idempotent, each calling a service. They import the
services inside their bodies: the services enqueue these tasks, so a top-level import would be
a cycle."""

import uuid
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

# Worth retrying: the broker, the database or a provider did not answer this time.
TRANSIENT = (ConnectionError, TimeoutError, OperationalError, InterfaceError)


@shared_task(
    name="rights.export_build",
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def export_build(request_id: str) -> str | None:
    """Build the zip an access or export request asked for. Claimed with a conditional update,
    so a redelivered message builds nothing twice."""
    from rights.services import export_bundle_build

    bundle = export_bundle_build(request_id=uuid.UUID(request_id))
    return None if bundle is None else str(bundle.pk)


@shared_task(name="rights.exports_expire")
def exports_expire() -> int:
    """Periodic (Celery beat, hourly): delete the bundles past their expiry."""
    from rights.services import exports_expire as expire

    return expire()


@shared_task(name="rights.erasures_run")
def erasures_run() -> int:
    """Periodic (Celery beat): start every erasure whose grace period is over and not on hold."""
    from rights.services import erasures_due

    due = erasures_due()
    for request_id in due:
        erasure_execute.delay(str(request_id))
    return len(due)


@shared_task(name="rights.erasure_execute", acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True)
def erasure_execute(request_id: str) -> str | None:
    """Make the person unreadable now, then delete their rows in the background."""
    from rights.services import erasure_execute as execute

    subject_id = execute(request_id=uuid.UUID(request_id))
    if subject_id is None:
        return None
    erasure_purge.delay(str(subject_id))
    return str(subject_id)


@shared_task(name="rights.erasure_purge", acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True)
def erasure_purge(subject_id: str, batch_size: int = 1000) -> int:
    """One bounded batch of an erased person's rows; enqueues the next batch until none is left."""
    from rights.services import erasure_purge as purge

    deleted = purge(subject_id=uuid.UUID(subject_id), batch_size=batch_size)
    if deleted:
        erasure_purge.delay(subject_id, batch_size)
    return deleted


@shared_task(name="rights.digest_send")
def digest_send() -> dict[str, Any]:
    """Daily (Celery beat): mail staff the requests overdue or due within seven days."""
    from rights.services import rights_digest_send

    return rights_digest_send()
