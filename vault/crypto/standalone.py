"""Envelopes that belong to no subject (pending sign-in state, MFA secrets): a fresh key per
envelope, wrapped by the KEK, bound to a context; and the signals through which their holders
take part in KEK rotation."""

import base64
import os
from collections.abc import Mapping
from typing import cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.dispatch import Signal

from vault.crypto.errors import DecryptionFailed
from vault.keys import KEY_BYTES, NONCE_BYTES, get_provider


def encrypt_standalone(plaintext: bytes, *, context: bytes) -> dict[str, str]:
    """Encrypt data that belongs to no subject yet (pending sign-in state, before any person
    exists) under a fresh key of its own, kept wrapped by the active KEK, both bound to
    `context`. JSON-safe, base64: {"kek": KEK id, "key": wrapped key, "body": nonce + ciphertext}."""
    key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
    nonce = os.urandom(NONCE_BYTES)
    body = AESGCM(key).encrypt(nonce, plaintext, context)
    kek_id, wrapped = get_provider().wrap(key, associated_data=context)
    return {"kek": kek_id, "key": base64.b64encode(wrapped).decode(), "body": base64.b64encode(nonce + body).decode()}


def decrypt_standalone(envelope: Mapping[str, str], *, context: bytes) -> bytes:
    """What `encrypt_standalone` sealed under `context`. Raises `DecryptionFailed` for a damaged
    or moved envelope, and the provider's errors for a retired KEK or a wrapped key that does
    not authenticate."""
    try:
        wrapped = base64.b64decode(envelope["key"], validate=True)
        body = base64.b64decode(envelope["body"], validate=True)
        kek_id = envelope["kek"]
    except (KeyError, TypeError, ValueError):
        raise DecryptionFailed("Not a standalone envelope.") from None
    key = get_provider().unwrap(wrapped, kek_id=kek_id, associated_data=context)
    try:
        return AESGCM(key).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], context)
    except (InvalidTag, ValueError):
        raise DecryptionFailed("Envelope did not authenticate (tampered, moved or truncated).") from None


def standalone_rewrap(envelope: Mapping[str, str], *, context: bytes) -> dict[str, str] | None:
    """The envelope with its key rewrapped under the active KEK (the body is left as it is), or
    None when it already is: for holders of long-lived envelopes, at KEK rotation."""
    provider = get_provider()
    active = provider.active_kek_id()
    if envelope["kek"] == active:
        return None
    key = provider.unwrap(
        base64.b64decode(envelope["key"], validate=True), kek_id=envelope["kek"], associated_data=context
    )
    kek_id, wrapped = provider.wrap(key, associated_data=context)
    return {**envelope, "kek": kek_id, "key": base64.b64encode(wrapped).decode()}


# Apps that keep standalone envelopes beyond a request (MFA secrets) take part in KEK rotation:
# `vault_keys rotate` sends `standalone_rewrap_requested` (receivers rewrap theirs with
# `standalone_rewrap` and return how many), and `status` and `retire` send
# `standalone_count_requested` (receivers return {kek_id: how many envelopes it wraps}), so a
# KEK is never destroyed while something still needs it.
standalone_rewrap_requested = Signal()


standalone_count_requested = Signal()


def standalone_rewrap_all() -> int:
    return sum(cast(int, done) for _, done in standalone_rewrap_requested.send(sender=None))


def standalone_by_kek() -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, found in standalone_count_requested.send(sender=None):
        for kek_id, count in cast(dict[str, int], found).items():
            counts[kek_id] = counts.get(kek_id, 0) + count
    return counts
