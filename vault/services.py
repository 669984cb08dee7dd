"""Writes of the vault core that span its parts (keys and audit log)."""

import uuid

from django.db import transaction

from vault.audit import audit_pseudonym_for, audit_pseudonym_unlink, audit_record
from vault.crypto import SubjectErased, subject_shred


def subject_keys_shred(*, subject_id: uuid.UUID, actor_type: str, actor_id: str) -> int:
    """Destroy the subject's data keys, record that it happened, and cut the link from the
    subject to their audit pseudonym. Returns how many keys were destroyed.

    The order closes every window: the pseudonym exists before the erasure marker is committed
    (so the entry can name it), and once the marker is there no new pseudonym or key is made.
    Shredding an erased subject again destroys nothing and records nothing."""
    try:
        audit_pseudonym_for(subject_id)
    except SubjectErased:
        return subject_shred(subject_id)
    destroyed = subject_shred(subject_id)
    with transaction.atomic():
        audit_record(actor_type=actor_type, actor_id=actor_id, action="subject.shred", subject_id=subject_id)
        audit_pseudonym_unlink(subject_id)
    return destroyed
