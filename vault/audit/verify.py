"""Verifying the audit log: `audit_verify` walks the whole chain and reports the first place
where it differs from what was written, checking the signed checkpoints on the way: those in the
database and, when given, the copies exported outside it (docs/audit.md, "What `manage.py
audit_verify` detects")."""

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db.models import TextField
from django.db.models.functions import Cast

from vault.audit.append import HEAD_ID
from vault.audit.canonical import CanonicalTime, FieldsPart, SubjectsDigest, canonical_form, checkpoint_message
from vault.audit.sink import ExportedCheckpoint
from vault.keys import get_provider
from vault.models import AUDIT_GENESIS_HASH, AuditCheckpoint, AuditEntry, AuditEntrySubject, AuditHead
from vault.signing import key_names

DEFAULT_BATCH_SIZE = 5000

# What `audit_verify` reads per entry. The time, the field names and the pseudonym come as text,
# so no Django converter runs per value (they were most of the cost of a walk).
_VERIFY_COLUMNS = (
    "seq",
    "created_text",
    "actor_type",
    "actor_id",
    "action",
    "purpose",
    "fields_json",
    "request_id",
    "pseudonym_text",
    "details",
    "prev_hash",
    "hash",
    "subjects_digest",
)


class Problem(StrEnum):
    """What `audit_verify` found wrong, as a stable code (the reason is for people)."""

    MISSING = "missing"
    BROKEN_LINK = "broken_link"
    ALTERED = "altered"
    HEAD_MISMATCH = "head_mismatch"
    HEAD_BEHIND = "head_behind"
    CHECKPOINT_KEY = "checkpoint_key"
    CHECKPOINT_SIGNATURE = "checkpoint_signature"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"
    CHECKPOINT_MISSING = "checkpoint_missing"
    SUBJECTS = "subjects"  # the people named for a batch entry are not those its hash covers


@dataclass(frozen=True)
class VerifyFailure:
    """The first place where the log differs from what was written (`seq` is the entry)."""

    seq: int
    problem: Problem
    reason: str


@dataclass(frozen=True)
class VerifyResult:
    entries: int  # entries found intact (all of them when ok)
    head_seq: int
    head_hash: str
    checkpoints: int  # in the database
    failure: VerifyFailure | None = None
    exported: int = 0  # exported checkpoints compared (when `exported` was given)
    newest_exported: int = 0  # the seq of the newest of them: entries after it have no copy outside

    @property
    def ok(self) -> bool:
        return self.failure is None


# What a good checkpoint vouches for: the hash at its seq, when it was signed, and where it lives
# ("" for the database, "exported " for the copy outside), for the reasons given.
Expected = dict[int, list[tuple[str, datetime, str]]]
# The database's checkpoints by (seq, signed_at): (hash, key name, signature).
Stored = dict[tuple[int, datetime], tuple[str, str, bytes]]


def _signature_failure(
    verify_key: Ed25519PublicKey,
    names: frozenset[str],
    seq: int,
    chain_hash: str,
    signed_at: datetime,
    fingerprint_used: str,
    signature: bytes,
    source: str,
) -> VerifyFailure | None:
    """Why a checkpoint does not verify, or None when it does. A checkpoint names its key by the
    key's JWK thumbprint, or by the hex fingerprint written before."""
    if fingerprint_used not in names:
        reason = (
            f"the {source}checkpoint signed at {_when(signed_at)} names key {fingerprint_used[:16]}, not the audit key"
        )
        return VerifyFailure(seq, Problem.CHECKPOINT_KEY, reason)
    try:
        verify_key.verify(signature, checkpoint_message(seq, chain_hash, signed_at))
    except InvalidSignature:
        reason = f"the {source}checkpoint signed at {_when(signed_at)} has a bad signature"
        return VerifyFailure(seq, Problem.CHECKPOINT_SIGNATURE, reason)
    return None


def _checkpoint_expectations(
    verify_key: Ed25519PublicKey,
) -> tuple[Expected, list[VerifyFailure], Stored, int]:
    """The hashes that the database's checkpoints with a good signature vouch for, by seq; a
    failure for each checkpoint whose signature does not verify; every checkpoint stored; and
    how many there are."""
    names = key_names(verify_key)
    expected: Expected = {}
    failures: list[VerifyFailure] = []
    stored: Stored = {}
    rows = AuditCheckpoint.objects.order_by("seq", "signed_at").values_list(
        "seq", "hash", "signed_at", "key_fingerprint", "signature"
    )
    count = 0
    for seq, chain_hash, signed_at, fingerprint_used, signature in rows:
        count += 1
        stored[(seq, signed_at)] = (chain_hash, fingerprint_used, bytes(signature))
        failure = _signature_failure(
            verify_key, names, seq, chain_hash, signed_at, fingerprint_used, bytes(signature), ""
        )
        if failure is not None:
            failures.append(failure)
        else:
            expected.setdefault(seq, []).append((chain_hash, signed_at, ""))
    return expected, failures, stored, count


def _exported_expectations(
    verify_key: Ed25519PublicKey, exported: Sequence[ExportedCheckpoint], expected: Expected, stored: Stored
) -> list[VerifyFailure]:
    """Add what the exported checkpoints with a good signature vouch for to `expected`. Each
    must also be in the database as it was exported: one missing or different there means the
    database's checkpoints were deleted or replaced (a copy signed by us cannot be made up)."""
    names = key_names(verify_key)
    failures: list[VerifyFailure] = []
    for checkpoint in exported:
        seq, chain_hash, signed_at = checkpoint.seq, checkpoint.hash, checkpoint.signed_at
        failure = _signature_failure(
            verify_key,
            names,
            seq,
            chain_hash,
            signed_at,
            checkpoint.key_fingerprint,
            checkpoint.signature,
            "exported ",
        )
        if failure is not None:
            failures.append(failure)
            continue
        expected.setdefault(seq, []).append((chain_hash, signed_at, "exported "))
        in_database = stored.get((seq, signed_at))
        if in_database is None:
            reason = (
                f"the checkpoint exported at entry {seq} (signed at {_when(signed_at)}) is not in the "
                "database: its row was deleted"
            )
            failures.append(VerifyFailure(seq, Problem.CHECKPOINT_MISSING, reason))
        elif in_database != (chain_hash, checkpoint.key_fingerprint, checkpoint.signature):
            reason = (
                f"the checkpoint exported at entry {seq} (signed at {_when(signed_at)}) differs from "
                "the database's copy"
            )
            failures.append(VerifyFailure(seq, Problem.CHECKPOINT_MISSING, reason))
    return failures


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z"


def _walk(
    rows: Iterable[tuple[Any, ...]], expected: Expected, batches: dict[int, str]
) -> tuple[int, str, VerifyFailure | None]:
    """Check entries in seq order up to the first bad one, popping the checkpoints passed, and
    collecting the subjects digest of each intact batch entry in `batches`. Returns (entries
    intact, hash of the last intact entry, the failure if one was found)."""
    prev_hash = AUDIT_GENESIS_HASH
    next_seq = 1
    vouched = 0  # the last seq a checkpoint confirmed
    fields_parts = FieldsPart()
    for row in rows:
        seq, created_part, actor_type, actor_id, action, purpose, fields_json, *rest = row
        request_id, pseudonym_text, details, entry_prev_hash, entry_hash, digest_of_subjects = rest
        if seq != next_seq:
            return (
                next_seq - 1,
                prev_hash,
                VerifyFailure(next_seq, Problem.MISSING, f"entry {next_seq} is missing (the next entry is {seq})"),
            )
        if entry_prev_hash != prev_hash:
            return (
                next_seq - 1,
                prev_hash,
                VerifyFailure(seq, Problem.BROKEN_LINK, f"its prev_hash is not the hash of entry {seq - 1}"),
            )
        try:
            canonical = canonical_form(
                seq,
                created_part,
                actor_type,
                actor_id,
                action,
                purpose,
                fields_parts[fields_json],
                request_id,
                # PostgreSQL's uuid text has hyphens, SQLite stores the bare hex.
                "" if pseudonym_text is None else pseudonym_text.replace("-", ""),
                details,
                entry_prev_hash,
                digest_of_subjects,
            )
        except (TypeError, AttributeError, ValueError):  # a column rewritten to a wrong type
            canonical = b""
        digest = hashlib.sha256(canonical).hexdigest()
        if digest != entry_hash:
            return (
                next_seq - 1,
                prev_hash,
                VerifyFailure(seq, Problem.ALTERED, "its content does not match its hash (altered)"),
            )
        if seq in expected:
            for vouched_hash, signed_at, source in expected.pop(seq):
                if vouched_hash != digest:
                    reason = (
                        f"the chain differs from the {source}checkpoint signed at {_when(signed_at)}: "
                        f"entries {vouched + 1}..{seq} were rewritten"
                    )
                    return next_seq - 1, prev_hash, VerifyFailure(seq, Problem.CHECKPOINT_MISMATCH, reason)
            vouched = seq
        if digest_of_subjects:
            batches[seq] = digest_of_subjects
        prev_hash = digest
        next_seq += 1
    return next_seq - 1, prev_hash, None


def _subjects_failure(batches: dict[int, str], up_to: int, batch_size: int) -> VerifyFailure | None:
    """The first batch entry (up to seq `up_to`) whose `AuditEntrySubject` rows do not hash to
    the digest it carries: a row deleted, added or changed. Rows naming an entry that is not a
    batch entry count too (people added to an entry that named none). Streams the rows in
    (entry, pseudonym) order, the table's key: one digest at a time in memory."""
    rows = (
        AuditEntrySubject.objects.filter(entry_seq__lte=up_to)
        .order_by("entry_seq", "subject_pseudonym")
        .annotate(pseudonym_text=Cast("subject_pseudonym", TextField()))
        .values_list("entry_seq", "pseudonym_text")
    )
    unseen = dict(batches)
    seq, digest = None, SubjectsDigest()

    def check(seq: int, digest: SubjectsDigest) -> VerifyFailure | None:
        carried = unseen.pop(seq, None)
        if carried is None:
            return VerifyFailure(seq, Problem.SUBJECTS, "people are named for it, but it is not a batch entry (added)")
        if digest.hexdigest() != carried:
            return VerifyFailure(seq, Problem.SUBJECTS, "the people named for it do not match its hash (altered)")
        return None

    for entry_seq, pseudonym_text in rows.iterator(chunk_size=batch_size):
        if entry_seq != seq:
            if seq is not None and (failure := check(seq, digest)) is not None:
                return failure
            seq, digest = entry_seq, SubjectsDigest()
        # PostgreSQL's uuid text has hyphens, SQLite stores the bare hex.
        digest.add(pseudonym_text.replace("-", ""))
    if seq is not None and (failure := check(seq, digest)) is not None:
        return failure
    if unseen:
        first = min(unseen)
        return VerifyFailure(first, Problem.SUBJECTS, "the people named for it are gone (removed)")
    return None


def audit_verify(
    *, batch_size: int = DEFAULT_BATCH_SIZE, exported: Sequence[ExportedCheckpoint] | None = None
) -> VerifyResult:
    """Walk the whole chain in seq order and report the first entry that is not as written.

    Finds removed entries (seq not contiguous from 1), broken links (prev_hash), altered entries
    (hash recomputed), a wrong head, people of a batch entry removed, added or changed (their
    digest, in the entry's hash), and, through the signed checkpoints, a chain rewritten and
    re-hashed consistently. Streams tuples, not model instances, to keep up with a large log.

    `exported` are the checkpoints copied outside the database (`exported_checkpoints_read`).
    Each must verify, be in the database as exported, and match the chain at its seq, and the
    head must not be behind the newest: what someone able to write the database (checkpoints
    included) cannot fake. Without them, the checkpoints are only those the database still has.
    """
    # Checkpoints, then the head, then entries up to that head: entries appended meanwhile fall
    # outside this run instead of looking like a mismatch.
    verify_key = get_provider().audit_verify_key()
    expected, failures, stored, checkpoint_count = _checkpoint_expectations(verify_key)
    if exported is not None:
        failures += _exported_expectations(verify_key, exported, expected, stored)
    head = AuditHead.objects.filter(pk=HEAD_ID).values_list("seq", "hash").first()
    rows = (
        AuditEntry.objects.order_by("seq")
        .annotate(
            created_text=CanonicalTime("created_at"),
            fields_json=Cast("fields", TextField()),
            pseudonym_text=Cast("subject_pseudonym", TextField()),
        )
        .values_list(*_VERIFY_COLUMNS)
    )
    if head is not None:
        rows = rows.filter(seq__lte=head[0])

    batches: dict[int, str] = {}
    intact, last_hash, chain_failure = _walk(rows.iterator(chunk_size=batch_size), expected, batches)
    subjects_failure = _subjects_failure(batches, intact, batch_size)
    if subjects_failure is not None:
        failures.append(subjects_failure)
    if chain_failure is not None:
        failures.insert(0, chain_failure)  # at the same seq, what the chain shows comes first
    else:
        if head is None:
            if intact:
                failures.insert(0, VerifyFailure(intact, Problem.HEAD_MISMATCH, "the chain head is missing"))
        elif intact < head[0]:
            reason = f"entry {intact + 1} is missing (the head says the log ends at {head[0]})"
            failures.insert(0, VerifyFailure(intact + 1, Problem.MISSING, reason))
        elif last_hash != head[1]:
            reason = "the head hash is not this entry's hash"
            failures.insert(0, VerifyFailure(head[0], Problem.HEAD_MISMATCH, reason))
        if expected:  # checkpoints past the head: the log was cut back, the head moved with it
            last = max(expected)
            _, signed_at, source = expected[last][0]
            ends = f"the head is at entry {intact}" if head and intact == head[0] else f"the log ends at entry {intact}"
            reason = (
                f"{ends}, behind the {source}checkpoint at entry {last} "
                f"(signed at {_when(signed_at)}): entries {intact + 1}..{last} were cut off"
            )
            failures.append(VerifyFailure(intact + 1, Problem.HEAD_BEHIND, reason))
    head_seq, head_hash = head or (0, AUDIT_GENESIS_HASH)
    return VerifyResult(
        entries=intact,
        head_seq=head_seq,
        head_hash=head_hash,
        checkpoints=checkpoint_count,
        failure=min(failures, key=lambda failure: failure.seq, default=None),
        exported=len(exported or ()),
        newest_exported=max((checkpoint.seq for checkpoint in exported or ()), default=0),
    )
