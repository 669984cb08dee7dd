"""Pairwise subject ids (as OpenID Connect's pairwise identifiers): each audience (a partner
client) sees a person under an id of its own, an HMAC of the subject id under a key derived
(HKDF) for that audience from the index root key. Two audiences' ids cannot be joined without
the key; the same person always gets the same id from the same audience."""

import base64
import hashlib
import hmac
import uuid
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.keys import get_provider

PAIRWISE_LENGTH = 26  # base32 characters: 130 bits of the HMAC


@lru_cache(maxsize=256)
def _audience_key(root: bytes, audience: str) -> bytes:
    info = b"vault-pairwise/1|" + audience.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(root)


def pairwise_id(*, audience: str, subject_id: uuid.UUID) -> str:
    """The id `audience` sees `subject_id` under: 26 lower-case base32 characters."""
    key = _audience_key(get_provider().index_root_key(), audience)
    digest = hmac.new(key, subject_id.bytes, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:PAIRWISE_LENGTH]
