"""The erasure journal: every erasure, recorded outside the database before any key is destroyed,
so that a restored backup can be made to forget again (docs/backups.md, "Restoring a backup").

A database backup taken before an erasure still holds the person's wrapped data keys; until the
key epochs have destroyed the KEK that wraps them, restoring it would bring the person back. The
journal lists whom to erase again: `vault.services.erasure_journal_replay` re-destroys their keys.

Entries hold the opaque subject id, the time and an Ed25519 signature under the audit signing key
(`KeyProvider.audit_signing_key`), nothing else. Reading verifies every signature and fails loudly
on one that does not verify: whoever can write the journal's storage must not be able to make a
replay erase someone who never asked.

Where it is kept is `VAULT_ERASURE_JOURNAL`; how it is written is the class named by
`VAULT_ERASURE_JOURNAL_BACKEND`, by default `FileErasureJournal`: a JSON-lines file appended to,
or a directory getting one new file per entry, written with fsync (the pattern of the audit
checkpoint sink, vault/audit/sink.py). Another backend (an object store) subclasses
`ErasureJournal`.
"""

import base64
import binascii
import fcntl
import json
import os
import secrets
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from vault.errors import ApplicationError, ErrorKind
from vault.keys import VaultError, get_provider

# Signed bytes start with this, so an entry's signature can never pass for another statement
# signed with the audit key (a checkpoint), nor the other way round.
_SIGNED_PREFIX = b"vault-erasure-journal/1\n"
SIGNATURE_BYTES = 64  # Ed25519


class ErasureJournalError(VaultError, ApplicationError):
    """The journal cannot be written or read: an erasure that must be journalled is not done."""

    kind = ErrorKind.UNAVAILABLE
    code = "erasure_journal_unavailable"
    message = "The erasure journal cannot be written or read; nothing was erased."


class ErasureJournalForged(ErasureJournalError):
    """An entry that is no entry, or whose signature does not verify: the journal was written by
    someone without the audit key. Nothing is replayed until it is looked into."""

    kind = ErrorKind.CONFLICT
    code = "erasure_journal_forged"
    message = "The erasure journal holds an entry that does not verify; nothing was replayed."


@dataclass(frozen=True)
class JournalEntry:
    """One verified erasure; `where` names its file and line."""

    subject_id: uuid.UUID
    erased_at: datetime
    where: str


class ErasureJournal(ABC):
    """Where erasures are recorded, outside the database and its backups."""

    def __init__(self, location: str) -> None:
        self.location = location

    @abstractmethod
    def append(self, record: dict[str, str]) -> None:
        """Store one signed record durably, or raise `OSError`."""

    @abstractmethod
    def lines(self) -> Iterator[tuple[str, str]]:
        """Every stored record as (where, JSON line), oldest first; raise `OSError` when the
        journal's storage is not there (an empty journal is no error)."""

    def __str__(self) -> str:
        return self.location


class FileErasureJournal(ErasureJournal):
    """A JSON-lines file, appended to; or, when the location is a directory, one new file per
    entry, never overwritten. Written with fsync. Nothing is created above the location: a
    missing mount fails the erasure instead of journalling into a directory nobody keeps."""

    def append(self, record: dict[str, str]) -> None:
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        path = Path(self.location)
        if path.is_dir():
            erased_at = datetime.fromisoformat(record["erased_at"]).astimezone(UTC)
            target = path / f"erasure-{erased_at:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.json"
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        else:
            target = path
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # erasures on several workers append at once
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the new file's name is durable too
        finally:
            os.close(directory)

    def lines(self) -> Iterator[tuple[str, str]]:
        root = Path(self.location)
        if root.is_dir():
            files = sorted(p for p in root.iterdir() if p.suffix in (".json", ".jsonl") and p.is_file())
        elif root.is_file():
            files = [root]
        elif root.parent.is_dir():
            files = []  # nothing erased yet
        else:
            raise FileNotFoundError(f"{root.parent} does not exist")
        for file in files:
            text = file.read_text(encoding="utf-8")
            for number, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    yield f"{file}:{number}", line


@cache
def erasure_journal() -> ErasureJournal | None:
    """The configured journal, or None when `VAULT_ERASURE_JOURNAL` is empty."""
    if not settings.VAULT_ERASURE_JOURNAL:
        return None
    backend = import_string(settings.VAULT_ERASURE_JOURNAL_BACKEND)
    if not (isinstance(backend, type) and issubclass(backend, ErasureJournal)):
        raise ImproperlyConfigured(
            "VAULT_ERASURE_JOURNAL_BACKEND must name a subclass of vault.erasure_journal.ErasureJournal."
        )
    journal: ErasureJournal = backend(settings.VAULT_ERASURE_JOURNAL)
    return journal


@receiver(setting_changed)
def _reset_journal(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("VAULT_ERASURE_JOURNAL"):
        erasure_journal.cache_clear()


def _signed_bytes(subject_id: uuid.UUID, erased_at: str) -> bytes:
    return _SIGNED_PREFIX + f"{subject_id}\n{erased_at}".encode()


def erasure_journal_append(*, subject_id: uuid.UUID, erased_at: datetime) -> None:
    """Journal one erasure, durably, before its keys are destroyed. Raises
    `ErasureJournalError` when it cannot be written: the caller then destroys nothing. Does
    nothing when no journal is configured (`check --deploy` warns about that)."""
    journal = erasure_journal()
    if journal is None:
        return
    if erased_at.tzinfo is None:
        raise ValueError("erased_at must be an aware datetime.")
    subject = uuid.UUID(str(subject_id))
    moment = erased_at.astimezone(UTC).isoformat()
    signature = get_provider().audit_signing_key().sign(_signed_bytes(subject, moment))
    record = {
        "subject_id": str(subject),
        "erased_at": moment,
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    try:
        journal.append(record)
    except OSError as exc:
        raise ErasureJournalError(
            f"The erasure journal ({journal}) cannot be written ({exc.strerror or exc}); nothing was erased."
        ) from exc


def erasure_journal_entries() -> Iterator[JournalEntry]:
    """Every journalled erasure, oldest first, each signature verified. Raises
    `ErasureJournalForged` at the first entry that is malformed or does not verify, and
    `ErasureJournalError` when no journal is configured or it cannot be read."""
    journal = erasure_journal()
    if journal is None:
        raise ErasureJournalError("No erasure journal is configured (VAULT_ERASURE_JOURNAL).")
    verify_key = get_provider().audit_verify_key()
    try:
        for where, line in journal.lines():
            subject_id, moment, erased_at, signature = _parse(line, where=where)
            try:
                verify_key.verify(signature, _signed_bytes(subject_id, moment))
            except InvalidSignature:
                raise ErasureJournalForged(
                    f"{where}: the signature does not verify under the audit key; the entry is forged or damaged."
                ) from None
            yield JournalEntry(subject_id=subject_id, erased_at=erased_at, where=where)
    except (OSError, UnicodeDecodeError) as exc:
        raise ErasureJournalError(f"The erasure journal ({journal}) cannot be read: {exc}.") from exc


def _parse(line: str, *, where: str) -> tuple[uuid.UUID, str, datetime, bytes]:
    def bad(what: str) -> ErasureJournalForged:
        return ErasureJournalForged(f"{where} is not an erasure journal entry: {what}.")

    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise bad("not JSON") from None
    if not isinstance(record, dict) or set(record) != {"subject_id", "erased_at", "signature"}:
        raise bad("not an object of subject_id, erased_at and signature")
    try:
        subject_id = uuid.UUID(record["subject_id"])
        moment = record["erased_at"]
        erased_at = datetime.fromisoformat(moment)
        signature = base64.b64decode(record["signature"], validate=True)
    except (TypeError, ValueError, AttributeError, binascii.Error):
        raise bad("a field of the wrong form") from None
    if str(subject_id) != record["subject_id"] or erased_at.tzinfo is None or len(signature) != SIGNATURE_BYTES:
        raise bad("a field of the wrong form")
    return subject_id, moment, erased_at, signature
