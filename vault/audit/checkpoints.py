"""Signed checkpoints of the chain head: anyone able to write the database can recompute every
hash, but not the audit key's signature, so a checkpoint copied where the database's
administrators cannot write later proves the log up to its seq was not rewritten (docs/audit.md,
"What checkpoints add"). Each one is exported to `AUDIT_CHECKPOINT_SINK` as it is made
(`vault.audit.sink`); `audit_verify` checks them, and compares the database with the export."""

import base64
from typing import Any

from django.db import router, transaction
from django.utils import timezone

from vault.audit.append import HEAD_ID
from vault.audit.canonical import checkpoint_message
from vault.audit.errors import AuditChainBroken, CheckpointExportFailed, NothingToSign
from vault.audit.sink import checkpoint_sink
from vault.audit.verify import audit_verify
from vault.keys import get_provider
from vault.models import AuditCheckpoint, AuditHead
from vault.signing import jwk_thumbprint


def audit_checkpoint_sign(*, verify: bool = True) -> AuditCheckpoint:
    """Sign the chain head with the audit signing key, store the checkpoint, and export it to
    the configured sink once it is committed (at once outside a transaction). By default the
    whole chain is verified first and exactly the verified head is signed: a checkpoint must
    never vouch for a forgery.

    Raises `CheckpointExportFailed` when the export fails: the checkpoint is then in the
    database only. Exporting after the commit means a copy never names a checkpoint that was
    rolled back, which verification would report as deleted."""
    if verify:
        result = audit_verify()
        if result.failure is not None:
            raise AuditChainBroken(f"Not signing a broken chain: entry {result.failure.seq}: {result.failure.reason}")
        seq, chain_hash = result.head_seq, result.head_hash
    else:
        seq, chain_hash = AuditHead.objects.filter(pk=HEAD_ID).values_list("seq", "hash").first() or (0, "")
    if seq < 1:
        raise NothingToSign("The audit log is empty: there is nothing to sign yet.")
    signing_key = get_provider().audit_signing_key()
    signed_at = timezone.now()
    checkpoint = AuditCheckpoint.objects.create(
        seq=seq,
        hash=chain_hash,
        signed_at=signed_at,
        key_fingerprint=jwk_thumbprint(signing_key.public_key()),
        signature=signing_key.sign(checkpoint_message(seq, chain_hash, signed_at)),
    )
    if checkpoint_sink() is not None:
        transaction.on_commit(lambda: checkpoint_export(checkpoint), using=router.db_for_write(AuditCheckpoint))
    return checkpoint


def checkpoint_export(checkpoint: AuditCheckpoint) -> None:
    """Copy a checkpoint to the configured sink (nothing when none is configured)."""
    sink = checkpoint_sink()
    if sink is None:
        return
    record = checkpoint_record(checkpoint)
    try:
        sink.export(record)
    except OSError as exc:
        raise CheckpointExportFailed(
            f"Checkpoint at entry {checkpoint.seq} was signed, but not exported to {sink}: {exc}", record=record
        ) from exc


def checkpoint_record(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """A checkpoint as JSON, to be copied where the database's administrators cannot write."""
    return {
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "signed_at": checkpoint.signed_at.isoformat(),
        "key_fingerprint": checkpoint.key_fingerprint,
        "signature": base64.b64encode(bytes(checkpoint.signature)).decode("ascii"),
    }
