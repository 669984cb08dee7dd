"""Blind indexes: keyed hashes that allow equality lookups on encrypted values.

HMAC-SHA256 over the normalized value, under a key derived (HKDF) per index from the index root
key, truncated to `bits`. Truncation makes distinct values collide on purpose, so the index alone
cannot confirm a guess; lookups therefore confirm each candidate by decrypting it. What each index
leaks and how to choose `bits` is in docs/encryption.md.
"""

import datetime
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import phonenumbers
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

from vault.keys import VaultError, get_provider

_SPACES = re.compile(r"\s+")


class InvalidValue(VaultError, ValueError):
    """A value that cannot be normalized for its index (an unparseable phone number or date)."""


def normalize_text(value: Any) -> str:
    """Unicode NFKC, case-folded, inner whitespace collapsed, ends trimmed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", str(value)).casefold()).strip()


def normalize_email(value: Any) -> str:
    return unicodedata.normalize("NFKC", str(value)).strip().lower()


def normalize_phone(value: Any) -> str:
    """E.164 (+31612345678). Numbers without a country code use VAULT_PHONE_REGION."""
    try:
        number = phonenumbers.parse(str(value), settings.VAULT_PHONE_REGION or None)
    except phonenumbers.NumberParseException:
        raise InvalidValue("Not a phone number.") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidValue("Not a possible phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_date(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        value = value.date()
    if isinstance(value, datetime.date):
        return value.isoformat()
    try:
        return datetime.date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise InvalidValue("Not an ISO date (YYYY-MM-DD).") from None


NORMALIZERS: dict[str, Callable[[Any], str]] = {
    "text": normalize_text,
    "email": normalize_email,
    "phone": normalize_phone,
    "date": normalize_date,
}


@lru_cache(maxsize=256)
def _derived_key(root: bytes, name: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"vault-blind-index/1|" + name.encode()).derive(
        root
    )


@dataclass(frozen=True)
class BlindIndex:
    """One index: its name (part of the key derivation, so never reuse one), the value kind
    (how values are normalized) and how many bits of the HMAC are kept."""

    name: str
    kind: str = "text"
    bits: int = 32

    def __post_init__(self) -> None:
        if self.kind not in NORMALIZERS:
            raise ValueError(f"Unknown blind index kind {self.kind!r}; one of {', '.join(NORMALIZERS)}.")
        if not 8 <= self.bits <= 256:
            raise ValueError("A blind index keeps between 8 and 256 bits.")

    @property
    def hex_length(self) -> int:
        return (self.bits + 3) // 4

    def normalize(self, value: Any) -> str:
        return NORMALIZERS[self.kind](value)

    def compute(self, value: Any) -> str:
        """The index of `value`: `bits` bits of HMAC-SHA256, as hex (the last digit masked)."""
        key = _derived_key(get_provider().index_root_key(), self.name)
        digest = int.from_bytes(hmac.new(key, self.normalize(value).encode("utf-8"), hashlib.sha256).digest())
        truncated = digest >> (256 - self.bits)
        return f"{truncated << (-self.bits % 4):0{self.hex_length}x}"


def confirmed_matches[M: models.Model](
    candidates: Iterable[M], index: BlindIndex, value: Any, read: Callable[[M], Any]
) -> list[M]:
    """Keep the candidates whose decrypted value really equals `value` (after normalization).

    `read` decrypts one candidate's value; callers pass a function of the access gate, so the
    confirmation is itself a checked, audited decryption.
    """
    wanted = index.normalize(value)
    matches = []
    for candidate in candidates:
        plaintext = read(candidate)
        if plaintext is not None and index.normalize(plaintext) == wanted:
            matches.append(candidate)
    return matches
