"""An entry's details: JSON encrypted under the subject's `audit` data key and bound to the
entry's seq. Only the ciphertext is hashed into the chain, so shredding the subject's keys at
erasure leaves the chain verifiable. The one module of the log that decrypts (the access-gate
check, tests/profiles/test_one_gate.py, names it)."""

import json
import uuid
from typing import Any

from vault.audit.errors import InvalidAuditEntry
from vault.crypto import associated_data, decrypt, encrypt
from vault.models import AuditEntry, DataClass


def _context(seq: int) -> bytes:
    return associated_data("audit", str(seq))


def details_plaintext(details: dict[str, Any]) -> bytes:
    """The details as they are encrypted; checked before the head is locked."""
    try:
        return json.dumps(details, sort_keys=True, separators=(",", ":")).encode()
    except (TypeError, ValueError):
        raise InvalidAuditEntry("details must be JSON-serializable.") from None


def details_encrypt(plaintext: bytes, *, subject_id: uuid.UUID, seq: int) -> bytes:
    return encrypt(plaintext, subject_id=subject_id, data_class=DataClass.AUDIT, context=_context(seq))


def audit_details_read(*, entry: AuditEntry, subject_id: uuid.UUID) -> dict[str, Any] | None:
    """The entry's decrypted details (for the subject's own access request, or an investigation).
    Raises `SubjectErased` once the subject's keys are shredded."""
    if entry.details is None:
        return None
    plaintext = decrypt(
        bytes(entry.details),
        subject_id=subject_id,
        data_class=DataClass.AUDIT,
        context=_context(entry.seq),
    )
    details: dict[str, Any] = json.loads(plaintext)
    return details
