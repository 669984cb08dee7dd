"""The gate's decryption of one person's rows, called by the gate's modules once their checks
have passed. Kept apart so every read path decrypts (and reports an erased person) the same way;
nothing outside `profiles.gate` may import it (tests/profiles/test_one_gate.py)."""

import uuid
from collections.abc import Sequence
from typing import Any

from profiles.errors import PersonErased
from vault import crypto
from vault.fields import SealedField, _id_part, decode_value


def decrypt_rows(subject_id: uuid.UUID, rows: Sequence[Any], field: SealedField) -> list[Any]:
    """Decrypt `field` of rows that all belong to `subject_id`, one key lookup for all."""
    return decrypt_pairs(subject_id, [(getattr(row, field.attname).ciphertext, row.pk) for row in rows], field)


def decrypt_pairs(subject_id: uuid.UUID, items: list[tuple[bytes, Any]], field: SealedField) -> list[Any]:
    """Decrypt one person's (ciphertext, row id) pairs of `field`; an erased person is a typed error."""
    items = [(ciphertext, _id_part(pk)) for ciphertext, pk in items]
    try:
        plaintexts = crypto.decrypt_for_subject(
            subject_id,
            items,
            data_class=field.data_class,
            context_prefix=field._context_prefix,
            context_suffix=_id_part(subject_id),
        )
    except crypto.SubjectErased:
        raise PersonErased() from None
    return [decode_value(plaintext) for plaintext in plaintexts]
