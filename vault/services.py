"""Writes of the vault core that span its parts (keys, the erasure journal and the audit log)."""

import re
import uuid
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from vault.audit import audit_pseudonym_for, audit_pseudonym_unlink, audit_record
from vault.crypto import EpochReport, SubjectErased, as_subject_id, key_epoch_advance, subject_shred
from vault.erasure_journal import erasure_journal_append, erasure_journal_entries
from vault.keys import get_provider
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


def _kek_name(kek_id: str) -> str:
    """A KEK's id as an audit field name: `kek-20250101-0a1b2c` becomes `kek_20250101_0a1b2c`."""
    name = re.sub(r"[^a-z0-9_]", "_", kek_id.lower())[:64]
    return name if re.match(r"^[a-z]", name) else f"kek_{name}"[:64]


def key_operation_record(*, action: str, kek_ids: Iterable[str] = (), actor_id: str) -> None:
    """One audit entry for an operation on the keys (`keys.kek_add`, `keys.rewrap`,
    `keys.kek_retire`, `keys.receipt_key_rotate`), naming the KEKs it concerned, never a key.
    The actor is the command or task that ran it (the person at the console is not known to it).
    `vault_keys init` is not recorded: it runs before the database exists."""
    audit_record(
        actor_type=AuditActorType.SYSTEM, actor_id=actor_id, action=action, fields=[_kek_name(k) for k in kek_ids]
    )


def key_epoch_run(*, actor_id: str, now: datetime | None = None) -> EpochReport:
    """`key_epoch_advance` (the beat task, `vault_keys epoch`), with what it did audited."""
    report = key_epoch_advance(now=now)
    if report.new_kek:
        key_operation_record(action="keys.kek_add", kek_ids=[report.new_kek], actor_id=actor_id)
    if report.rewrapped or report.standalone_rewrapped:
        key_operation_record(action="keys.rewrap", kek_ids=[get_provider().active_kek_id()], actor_id=actor_id)
    if report.retired:
        key_operation_record(action="keys.kek_retire", kek_ids=report.retired, actor_id=actor_id)
    return report
