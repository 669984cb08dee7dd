"""Celery tasks of the partners app: thin, idempotent, calling the services."""

from celery import shared_task


@shared_task(name="partners.ingestion_requests_purge")
def ingestion_requests_purge() -> int:
    """Periodic (Celery beat): forget the kept answers of event ingestions whose
    Idempotency-Key expired. Deleting what is already gone is a no-op, so runs may overlap."""
    from partners.services import partner_ingestion_requests_purge

    return partner_ingestion_requests_purge()
