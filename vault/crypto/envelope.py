"""Field values under a subject's data key: AES-256-GCM, format 1 =
``0x01 | DEK version (4 bytes, big-endian) | nonce (12) | ciphertext+tag``. The associated data
binds model, field, row id and subject, so a ciphertext copied elsewhere fails to decrypt."""

import os
import uuid
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag

from vault.crypto.data_keys import key_for_read, key_for_write
from vault.crypto.errors import DecryptionFailed, as_subject_id
from vault.keys import NONCE_BYTES

FORMAT_V1 = 1


HEADER_BYTES = 1 + 4 + NONCE_BYTES


def encrypt(plaintext: bytes, *, subject_id: uuid.UUID, data_class: str, context: bytes) -> bytes:
    version, aead = key_for_write(as_subject_id(subject_id), data_class)
    nonce = os.urandom(NONCE_BYTES)
    return b"\x01" + version.to_bytes(4, "big") + nonce + aead.encrypt(nonce, plaintext, context)


def decrypt(ciphertext: bytes, *, subject_id: uuid.UUID, data_class: str, context: bytes) -> bytes:
    return decrypt_for_subject(subject_id, [(ciphertext, context)], data_class=data_class)[0]


def decrypt_for_subject(
    subject_id: uuid.UUID,
    items: Iterable[tuple[bytes, bytes]],
    *,
    data_class: str,
    context_prefix: bytes = b"",
    context_suffix: bytes = b"",
) -> list[bytes]:
    """Decrypt many of one subject's values; each item is (ciphertext, context), and the
    associated data is `context_prefix + context + context_suffix`.

    The access gate reads a person's values together, so the key is looked up once, not once per
    value, and the parts of the associated data shared by all values are passed once. This is
    the hot path of every read: kept deliberately tight."""
    subject_id = as_subject_id(subject_id)
    plaintexts: list[bytes] = []
    append = plaintexts.append
    header, aead = b"", None  # format byte + DEK version of the key in hand
    for ciphertext, context in items:
        try:
            if not ciphertext.startswith(header) or not header:
                if ciphertext[0] != FORMAT_V1:
                    raise DecryptionFailed("Not a vault ciphertext of a known format.")
                header = ciphertext[:5]
                aead = key_for_read(subject_id, data_class, int.from_bytes(header[1:]))
            append(
                aead.decrypt(  # type: ignore[union-attr]
                    ciphertext[5:HEADER_BYTES], ciphertext[HEADER_BYTES:], context_prefix + context + context_suffix
                )
            )
        except (InvalidTag, ValueError, IndexError):
            raise DecryptionFailed("Ciphertext did not authenticate (tampered, moved or truncated).") from None
    return plaintexts
