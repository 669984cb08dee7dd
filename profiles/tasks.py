"""Celery tasks of the profiles app: thin, idempotent, calling the services."""

from typing import Any

from celery import shared_task


@shared_task(name="profiles.retention_run")
def retention_run() -> dict[str, Any]:
    """Periodic (Celery beat): delete what is past its retention, in bounded batches. Two runs
    at once skip each other's locked rows, so it is safe on many workers."""
    from profiles.services import retention_run as run

    report = run()
    return {"deleted": report.total, "counts": report.counts}


@shared_task(name="profiles.field_reindex")
def field_reindex(key: str) -> int:
    """After a field's searchability or index size changed: recompute its blind indexes."""
    from profiles.gate import profile_field_reindex

    return profile_field_reindex(key=key)
