"""The tamper-evident audit log (DESIGN.md 2b, docs/audit.md).

Every event is one `AuditEntry` carrying the SHA-256 of its canonical form, which includes the
hash of the entry before it: changing, inserting or removing an entry breaks the chain at a
findable place. `audit_record`, `audit_record_many` (the same event about each of many people)
and `audit_record_batch` (one entry about a batch of people, named in `AuditEntrySubject` rows
whose digest the entry's hash covers) are the only writers; `audit_verify` walks the whole
chain; `audit_checkpoint_sign` signs the head and exports the checkpoint outside the database
(`AUDIT_CHECKPOINT_SINK`), so that copy can later prove the log was not rewritten, even by
someone able to recompute every hash and to delete the database's checkpoints.

Entries name people only by an audit pseudonym and fields only by name. Details that must be
kept are encrypted under the subject's key and only their ciphertext is hashed, so erasure
(shredding the keys, unlinking the pseudonym) leaves the chain verifiable and anonymous.

The package's API is what this module exports. Its modules, by topic: `canonical` (the forms
that are hashed and signed), `pseudonyms`, `append` (the writers and the head lock), `details`
(their encryption), `checkpoints`, `sink` (their copy outside the database), `verify`, `errors`,
and `selectors` (the person's own "who accessed my data", imported from `vault.audit.selectors`).
"""

from vault.audit.append import HEAD_ID, audit_record, audit_record_batch, audit_record_many
from vault.audit.canonical import CANONICAL_FORMAT, CHECKPOINT_FORMAT, audit_entry_hash
from vault.audit.checkpoints import audit_checkpoint_sign, checkpoint_export, checkpoint_record
from vault.audit.details import audit_details_read
from vault.audit.errors import (
    AuditChainBroken,
    AuditError,
    CheckpointExportFailed,
    CheckpointSinkError,
    InvalidAuditEntry,
    NothingToSign,
)
from vault.audit.pseudonyms import audit_pseudonym_for, audit_pseudonym_unlink
from vault.audit.sink import CheckpointSink, ExportedCheckpoint, checkpoint_sink, exported_checkpoints_read
from vault.audit.verify import DEFAULT_BATCH_SIZE, Problem, VerifyFailure, VerifyResult, audit_verify

__all__ = [
    "CANONICAL_FORMAT",
    "CHECKPOINT_FORMAT",
    "DEFAULT_BATCH_SIZE",
    "HEAD_ID",
    "AuditChainBroken",
    "AuditError",
    "CheckpointExportFailed",
    "CheckpointSink",
    "CheckpointSinkError",
    "ExportedCheckpoint",
    "InvalidAuditEntry",
    "NothingToSign",
    "Problem",
    "VerifyFailure",
    "VerifyResult",
    "audit_checkpoint_sign",
    "audit_details_read",
    "audit_entry_hash",
    "audit_pseudonym_for",
    "audit_pseudonym_unlink",
    "audit_record",
    "audit_record_batch",
    "audit_record_many",
    "audit_verify",
    "checkpoint_export",
    "checkpoint_record",
    "checkpoint_sink",
    "exported_checkpoints_read",
]
