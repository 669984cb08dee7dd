"""Writes of the partners app, by topic, all importable from `partners.services`:

- `clients`: clients, credentials, webhook secrets, pairwise ids.
- `webhooks`: outbox events fanned out to clients' webhooks, signed, sent, retried, replayed.
- `triggers`: catalog events matched against the preference index, notifications enqueued.
- `events`: event ingestion, one or a batch, with idempotency keys.
- `segments`: segment definitions and their members, computed inside the vault.
- `audiences`: audience export of a segment's members, streamed a page at a time.
"""

from partners.services.audiences import ExportPage, audience_export_plan, audience_export_stream, audience_fields
from partners.services.clients import (
    CLIENT_ATTRS,
    pairwise_ids_for,
    partner_client_check,
    partner_client_create,
    partner_client_update,
    partner_credential_create,
    partner_credential_revoke,
    partner_webhook_secret_rotate,
)
from partners.services.events import IngestionAnswer, partner_events_ingest, partner_ingestion_requests_purge
from partners.services.segments import (
    segment_compute,
    segment_create,
    segment_definition_clean,
    segment_delete,
    segment_members_evaluate,
    segment_members_expire,
    segment_refresh,
)
from partners.services.triggers import (
    TriggerResult,
    preference_index_refresh,
    preference_token,
    preference_tokens,
    trigger_fire,
    trigger_matches,
)
from partners.services.webhooks import (
    webhook_backoff,
    webhook_deliveries_dispatch,
    webhook_deliveries_replay,
    webhook_deliveries_send,
    webhook_delivery_attempt,
    webhook_log_purge,
    webhooks_fanout,
)

__all__ = [
    "CLIENT_ATTRS",
    "ExportPage",
    "IngestionAnswer",
    "TriggerResult",
    "audience_export_plan",
    "audience_export_stream",
    "audience_fields",
    "pairwise_ids_for",
    "partner_client_check",
    "partner_client_create",
    "partner_client_update",
    "partner_credential_create",
    "partner_credential_revoke",
    "partner_events_ingest",
    "partner_ingestion_requests_purge",
    "partner_webhook_secret_rotate",
    "preference_index_refresh",
    "preference_token",
    "preference_tokens",
    "segment_compute",
    "segment_create",
    "segment_definition_clean",
    "segment_delete",
    "segment_members_evaluate",
    "segment_members_expire",
    "segment_refresh",
    "trigger_fire",
    "trigger_matches",
    "webhook_backoff",
    "webhook_deliveries_dispatch",
    "webhook_deliveries_replay",
    "webhook_deliveries_send",
    "webhook_delivery_attempt",
    "webhook_log_purge",
    "webhooks_fanout",
]
