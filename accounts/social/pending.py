"""Pending sign-in state (a social sign-up in progress, a TOTP app being set up) sealed in the
session, so no provider answer or secret sits in the session table in plaintext."""

import json
import logging
from typing import Any

from profiles.gate import (
    social_pending_unseal,
)
from vault import crypto, keys
from vault.keys import VaultError

# One logger for social sign-in, whichever module writes the line.
logger = logging.getLogger("accounts.social")


# allauth keeps the whole social login (tokens, the provider's answer, the e-mail address) in the
# session while the person reads the sign-up screen, a serialized request or social login while
# it asks someone to confirm their password, and the new TOTP secret while an authenticator app
# is being set up; the session table only signs its data. Between requests these are kept sealed
# under a fresh key that only the KEK can unwrap, unsealed (through the gate) for the requests
# that need them, and gone once the flow ends.
PENDING_SESSION_KEY = "socialaccount_sociallogin"  # allauth's, for a social sign-up
TOTP_SETUP_SESSION_KEY = "mfa.totp.secret"  # allauth's, while a TOTP app is being set up
SEALED_SESSION_KEYS = {
    PENDING_SESSION_KEY: "vault_sealed_sociallogin",
    "account_reauthentication_state": "vault_sealed_reauthentication",  # allauth's, for reauthentication
    TOTP_SETUP_SESSION_KEY: "vault_sealed_totp_setup",
}
# What the audit log calls each when it is unsealed.
SEALED_SESSION_FIELDS = {
    PENDING_SESSION_KEY: "social.pending_signup",
    "account_reauthentication_state": "account.reauthentication_state",
    TOTP_SETUP_SESSION_KEY: "mfa.totp_setup_secret",
}
SEALED_SESSION_KEY = SEALED_SESSION_KEYS[PENDING_SESSION_KEY]
PENDING_CONTEXT = "vault-pending-social-login/1"


def social_pending_seal(data: Any, *, name: str) -> dict[str, str]:
    """`data` encrypted under a key of its own, kept wrapped by the KEK (no person may exist yet
    to own a data key), bound to the session key `name` it is stored under."""
    plaintext = json.dumps(data, separators=(",", ":")).encode()
    return crypto.encrypt_standalone(plaintext, context=keys.associated_data(PENDING_CONTEXT, name))


def session_pending_seal(session: dict[str, Any]) -> dict[str, Any]:
    """The session as stored: pending sign-in state sealed (the session backend calls this)."""
    if not any(name in session for name in SEALED_SESSION_KEYS):
        return session
    stored = dict(session)
    for name, sealed_name in SEALED_SESSION_KEYS.items():
        if name in stored:
            stored[sealed_name] = social_pending_seal(stored.pop(name), name=name)
    return stored


def session_pending_unseal(stored: dict[str, Any]) -> dict[str, Any]:
    """The session as used: pending sign-in state unsealed (through the gate, audited)."""
    if not any(sealed_name in stored for sealed_name in SEALED_SESSION_KEYS.values()):
        return stored
    session = dict(stored)
    for name, sealed_name in SEALED_SESSION_KEYS.items():
        if sealed_name not in session:
            continue
        sealed = session.pop(sealed_name)
        try:
            session[name] = social_pending_unseal(
                sealed=sealed, context=PENDING_CONTEXT, name=name, field=SEALED_SESSION_FIELDS[name]
            )
        except (VaultError, ValueError, TypeError):
            # A retired KEK or a damaged value: the person starts that step again.
            logger.warning("Pending state %s could not be unsealed; dropped", name)
    return session
