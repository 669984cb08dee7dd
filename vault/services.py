"""Writes of the vault core that span its parts (keys, the erasure journal and the audit log)."""

import uuid

from django.db import transaction
from django.utils import timezone

from vault.audit import audit_pseudonym_for, audit_pseudonym_unlink, audit_record
from vault.crypto import SubjectErased, as_subject_id, subject_shred
from vault.erasure_journal import erasure_journal_append, erasure_journal_entries
from vault.models import AuditActorType


def subject_keys_shred(*, subject_id: uuid.UUID, actor_type: str, actor_id: str) -> int:
    """Destroy the subject's data keys, record that it happened, and cut the link from the
    subject to their audit pseudonym. Returns how many keys were destroyed.

    The erasure is journalled outside the database first (vault/erasure_journal.py), so that a
    restored backup can be made to forget again; a journal that cannot be written raises
    `ErasureJournalError` and nothing is destroyed. An entry whose erasure then fails is harmless:
    replaying it erases someone who asked to be erased.

    The order closes every window: the pseudonym exists before the erasure marker is committed
    (so the entry can name it), and once the marker is there no new pseudonym or key is made.
    Shredding an erased subject again destroys nothing and records nothing (in the audit log)."""
    subject_id = as_subject_id(subject_id)
    erasure_journal_append(subject_id=subject_id, erased_at=timezone.now())
    return _subject_erase(subject_id=subject_id, actor_type=actor_type, actor_id=actor_id)


def _subject_erase(*, subject_id: uuid.UUID, actor_type: str, actor_id: str) -> int:
    try:
        audit_pseudonym_for(subject_id)
    except SubjectErased:
        return subject_shred(subject_id)
    destroyed = subject_shred(subject_id)
    with transaction.atomic():
        audit_record(actor_type=actor_type, actor_id=actor_id, action="subject.shred", subject_id=subject_id)
        audit_pseudonym_unlink(subject_id)
    return destroyed


def erasure_journal_replay() -> list[uuid.UUID]:
    """After restoring a database backup: destroy again the keys of everyone the erasure journal
    names, and cut their audit pseudonym links again. Returns their ids, in journal order, each
    once (the rights app deletes their rows next: `rights_erasure_replay`).

    The whole journal is read and verified before anything is destroyed, so a forged entry
    (`ErasureJournalForged`) erases nobody. Idempotent: a subject already erased in this database
    costs a lookup and records nothing."""
    subjects = list(dict.fromkeys(entry.subject_id for entry in erasure_journal_entries()))
    for subject_id in subjects:
        _subject_erase(subject_id=subject_id, actor_type=AuditActorType.SYSTEM, actor_id="vault.erasure_journal_replay")
    return subjects
