"""Writes of the partners app, by topic, all importable from `partners.services`:

- `clients`: clients, credentials, webhook secrets, pairwise ids.
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

__all__ = [
    "CLIENT_ATTRS",
    "pairwise_ids_for",
    "partner_client_create",
    "partner_client_update",
    "partner_credential_create",
    "partner_credential_revoke",
    "partner_webhook_secret_rotate",
]
