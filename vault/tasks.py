import json
import logging
from dataclasses import asdict
from typing import Any

from celery import shared_task
from django.db import connection

from vault.audit import CheckpointExportFailed, NothingToSign, audit_checkpoint_sign, checkpoint_record
from vault.log import request_id_var
from vault.services import key_epoch_run

checkpoint_logger = logging.getLogger("vault.audit.checkpoints")


@shared_task(name="vault.ping")
def ping() -> dict[str, Any]:
    """A round trip through broker, worker and database: `celery -A config call vault.ping`.

    Answers with the request id the worker adopted, which shows ids crossing the broker.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (one,) = cursor.fetchone()
    return {"pong": True, "database": one == 1, "request_id": request_id_var.get()}


@shared_task(name="vault.audit_checkpoint")
def audit_checkpoint() -> dict[str, Any] | None:
    """Periodic (Celery beat): verify the audit chain, sign its head and export the checkpoint to
    AUDIT_CHECKPOINT_SINK. The record goes to the log too, a second copy outside the database.
    A failed export fails the task (after logging the record); the next run exports its own."""
    try:
        record = checkpoint_record(audit_checkpoint_sign())
    except NothingToSign:
        return None
    except CheckpointExportFailed as exc:
        checkpoint_logger.error("audit checkpoint %s not exported: %s", json.dumps(exc.record, sort_keys=True), exc)
        raise
    checkpoint_logger.info("audit checkpoint %s", json.dumps(record, sort_keys=True))
    return record


@shared_task(name="vault.key_epoch_advance")
def key_epoch() -> dict[str, Any]:
    """Periodic (Celery beat): start a new key epoch when the active KEK is older than
    VAULT_KEY_EPOCH_DAYS, and destroy KEKs whose epoch ended more than VAULT_BACKUP_RETENTION_DAYS
    ago (docs/backups.md). Most runs do nothing; a run cut short is finished by the next."""
    return asdict(key_epoch_run(actor_id="vault.key_epoch"))
