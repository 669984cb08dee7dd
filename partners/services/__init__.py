"""Writes of the partners app, by topic, all importable from `partners.services`:

- `clients`: clients, credentials, webhook secrets, pairwise ids.
- `events`: event ingestion, one or a batch, with idempotency keys.
"""

from partners.services.clients import (
    CLIENT_ATTRS,
    pairwise_ids_for,
    partner_client_create,
    partner_client_update,
    partner_credential_create,
    partner_credential_revoke,
    partner_webhook_secret_rotate,
)
from partners.services.events import IngestionAnswer, partner_events_ingest, partner_ingestion_requests_purge

__all__ = [
    "CLIENT_ATTRS",
    "IngestionAnswer",
    "pairwise_ids_for",
    "partner_client_create",
    "partner_client_update",
    "partner_credential_create",
    "partner_credential_revoke",
    "partner_events_ingest",
    "partner_ingestion_requests_purge",
    "partner_webhook_secret_rotate",
]
