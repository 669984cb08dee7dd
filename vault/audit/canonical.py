"""The canonical forms of the audit log: the bytes an entry's hash covers and the bytes a
checkpoint's signature covers. Appending and verifying both build them here, so the two can
never disagree on what was hashed (docs/audit.md, "What is chained")."""

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from django.db import NotSupportedError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Func, TextField
from django.db.models.sql.compiler import SQLCompiler

from vault.models import AuditEntry

CANONICAL_FORMAT = "vault-audit/1"
CHECKPOINT_FORMAT = "vault-audit-checkpoint/1"

# Canonical form: the parts joined by \x1f, field names by \x1e. No part may contain either
# (audit_record refuses control characters), so two different entries never share a form.
SEP = "\x1f"
LIST_SEP = "\x1e"
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def canonical_form(
    seq: int,
    created_part: str,
    actor_type: str,
    actor_id: str,
    action: str,
    purpose: str,
    fields_part: str,
    request_id: str,
    pseudonym_part: str,
    details: bytes | memoryview | None,
    prev_hash: str,
    subjects_digest: str = "",
) -> bytes:
    # A batch entry's digest of the people it names comes last, and only on batch entries: every
    # other entry keeps the form (and hash) it always had. The part count tells the two apart.
    batch = (subjects_digest,) if subjects_digest else ()
    return SEP.join(
        (
            CANONICAL_FORMAT,
            str(seq),
            created_part,
            actor_type,
            actor_id,
            action,
            purpose,
            fields_part,
            request_id,
            pseudonym_part,
            "" if details is None else hashlib.sha256(details).hexdigest(),
            prev_hash,
            *batch,
        )
    ).encode()


class SubjectsDigest:
    """The digest a batch entry carries of the people it names: SHA-256 over their audit
    pseudonyms as hex, sorted, joined by \x1e. Fed one pseudonym at a time, in sorted order, so
    verifying streams the rows instead of holding a batch's."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._first = True

    def add(self, pseudonym_hex: str) -> None:
        self._hash.update((pseudonym_hex if self._first else LIST_SEP + pseudonym_hex).encode())
        self._first = False

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def subjects_digest(pseudonym_hexes: list[str]) -> str:
    """`SubjectsDigest` of these pseudonyms (hex, distinct), in any order."""
    return hashlib.sha256(LIST_SEP.join(sorted(pseudonym_hexes)).encode()).hexdigest()


class FieldsPart(dict[str | None, str]):
    """A field list's JSON text -> its canonical part. A log repeats a handful of field lists,
    so each is decoded once per verification instead of once per entry."""

    def __missing__(self, text: str | None) -> str:
        if len(self) > 10_000:  # a log of all-different lists gains nothing from the cache
            self.clear()
        names = json.loads(text) if text is not None else None
        # Only what audit_record writes: a dict, a string or a name holding a separator could
        # otherwise be rewritten into the same canonical part as a genuine list of names.
        if not isinstance(names, list) or not all(isinstance(n, str) and not CONTROL.search(n) for n in names):
            raise TypeError("fields is not a list of names")
        part = self[text] = LIST_SEP.join(names)
        return part


def time_part(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class CanonicalTime(Func):
    """A timestamp rendered by the database exactly as `time_part` renders it, so verifying
    makes no datetime object per entry (that was a third of the time of a walk)."""

    arity = 1
    output_field = TextField()

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, Any]:
        if connection.vendor == "postgresql":
            template = """to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
        elif connection.vendor == "sqlite" and connection.timezone_name == "UTC":
            # Django stores UTC text: "YYYY-MM-DD HH:MM:SS", then ".ffffff" unless it is 0.
            template = "replace(substr(%(expressions)s || '.000000', 1, 26), ' ', 'T') || '+00:00'"
        else:
            raise NotSupportedError("The audit log is verified on PostgreSQL, or SQLite keeping UTC.")
        return super().as_sql(compiler, connection, template=template, **extra_context)


def audit_entry_hash(entry: AuditEntry) -> str:
    """The hash an entry must carry: SHA-256 of its canonical form (prev_hash included)."""
    return hashlib.sha256(
        canonical_form(
            entry.seq,
            time_part(entry.created_at),
            entry.actor_type,
            entry.actor_id,
            entry.action,
            entry.purpose,
            LIST_SEP.join(entry.fields),
            entry.request_id,
            "" if entry.subject_pseudonym is None else entry.subject_pseudonym.hex,
            entry.details,
            entry.prev_hash,
            entry.subjects_digest,
        )
    ).hexdigest()


def checkpoint_message(seq: int, chain_hash: str, signed_at: datetime) -> bytes:
    """What a checkpoint's signature covers. The name of the key is not part of it, so
    checkpoints that name their key the legacy way verify as they did (`signing.key_names`)."""
    return SEP.join((CHECKPOINT_FORMAT, str(seq), chain_hash, time_part(signed_at))).encode()
