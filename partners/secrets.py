"""A client's webhook signing secret, sealed under the KEK: it must be read back to sign every
delivery, so it cannot be hashed like a credential. Not personal data, so no gate: only this
module may unseal it (tests/profiles/test_one_gate.py)."""

import base64
import secrets

from vault import crypto, keys

_CONTEXT = keys.associated_data("vault-webhook-secret/1")


def webhook_secret_new() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def webhook_secret_seal(secret: str) -> dict[str, str]:
    return crypto.encrypt_standalone(secret.encode("utf-8"), context=_CONTEXT)


def webhook_secret_unseal(sealed: dict[str, str]) -> str:
    return crypto.decrypt_standalone(sealed, context=_CONTEXT).decode("utf-8")


def cursor_seal(payload: bytes, *, client_id: str) -> dict[str, str]:
    """A feed position sealed for one client: positions name ledger rows and exact times that
    every client would share, so in the clear they would let two clients join their people."""
    return crypto.encrypt_standalone(payload, context=keys.associated_data("vault-partner-cursor/1", client_id))


def cursor_unseal(sealed: dict[str, str], *, client_id: str) -> bytes:
    return crypto.decrypt_standalone(sealed, context=keys.associated_data("vault-partner-cursor/1", client_id))
