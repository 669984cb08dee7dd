"""Celery tasks of the rights app: thin, idempotent, calling the services."""

import uuid

from celery import shared_task
from django.db import InterfaceError, OperationalError


@shared_task(
    name="rights.export_build",
    acks_late=True,
    autoretry_for=(ConnectionError, TimeoutError, OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def export_build(request_id: str) -> str | None:
    """Build the bundle of an access or export request. Safe to deliver twice or to run on many
    workers: the service claims the request first. Returns the bundle's id, if there is one."""
    from rights.services.export import export_bundle_build

    bundle = export_bundle_build(request_id=uuid.UUID(str(request_id)))
    return None if bundle is None else str(bundle.pk)


@shared_task(name="rights.exports_expire")
def exports_expire() -> int:
    """Periodic (Celery beat, hourly): delete the bundles past their expiry."""
    from rights.services.export import exports_expire as expire

    return expire()
