"""Exported checkpoints: every signed checkpoint is also written outside the database as it is
made, and `audit_verify --checkpoints PATH` compares the database with that copy.

A checkpoint that only lives in the database proves little: whoever can write the database can
delete it, then rewrite or cut the chain after the checkpoints left. A copy on storage the
database's administrators cannot rewrite (docs/audit.md, "Where to keep exported checkpoints")
turns such a rewrite into a failed verification.

Where the copy goes is `AUDIT_CHECKPOINT_SINK`; how it is written is the class named by
`AUDIT_CHECKPOINT_SINK_BACKEND`, by default `FileCheckpointSink`: a JSON-lines file that each
checkpoint is appended to, or a directory that gets one new file per checkpoint (for write-once
storage that can create objects but not append to them). Another backend (an object store with a
retention lock, a remote log) subclasses `CheckpointSink`. Whatever writes the copy, verifying
reads it in the file format: download it as a JSON-lines file or a directory of such files.
"""

import base64
import binascii
import fcntl
import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from vault.audit.errors import CheckpointSinkError

_HASH = re.compile(r"[0-9a-f]{64}")
SIGNATURE_BYTES = 64  # Ed25519


class CheckpointSink(ABC):
    """Where signed checkpoints are copied as they are made, outside the database."""

    def __init__(self, location: str) -> None:
        self.location = location

    @abstractmethod
    def export(self, record: dict[str, Any]) -> None:
        """Store one checkpoint record (`checkpoint_record`) durably, or raise."""

    def __str__(self) -> str:
        return self.location


class FileCheckpointSink(CheckpointSink):
    """A JSON-lines file, appended to; or, when the location is a directory, one new file per
    checkpoint, never overwritten. Written with fsync. Nothing is created above the location: a
    missing mount fails the export instead of filling a local directory nobody keeps."""

    def export(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        path = Path(self.location)
        if path.is_dir():
            signed_at = datetime.fromisoformat(record["signed_at"]).astimezone(UTC)
            target = path / f"checkpoint-{record['seq']:012d}-{signed_at:%Y%m%dT%H%M%S%fZ}.json"
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        else:
            target = path
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # the beat task and the command may append at once
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


@cache
def checkpoint_sink() -> CheckpointSink | None:
    """The configured sink, or None when `AUDIT_CHECKPOINT_SINK` is empty."""
    if not settings.AUDIT_CHECKPOINT_SINK:
        return None
    backend = import_string(settings.AUDIT_CHECKPOINT_SINK_BACKEND)
    if not (isinstance(backend, type) and issubclass(backend, CheckpointSink)):
        raise ImproperlyConfigured(
            "AUDIT_CHECKPOINT_SINK_BACKEND must name a subclass of vault.audit.sink.CheckpointSink."
        )
    sink: CheckpointSink = backend(settings.AUDIT_CHECKPOINT_SINK)
    return sink


@receiver(setting_changed)
def _reset_sink(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("AUDIT_CHECKPOINT_SINK"):
        checkpoint_sink.cache_clear()


@dataclass(frozen=True)
class ExportedCheckpoint:
    """One checkpoint as the exported copy holds it; `where` names its file and line."""

    seq: int
    hash: str
    signed_at: datetime
    key_fingerprint: str
    signature: bytes
    where: str


def exported_checkpoints_read(path: str | Path) -> list[ExportedCheckpoint]:
    """The checkpoints of an exported copy: a JSON-lines file, or a directory of `*.json` and
    `*.jsonl` files. A line that is not a checkpoint record fails the whole read (a copy that
    cannot be read vouches for nothing), naming its file and line."""
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.suffix in (".json", ".jsonl") and p.is_file())
    elif root.is_file():
        files = [root]
    else:
        raise CheckpointSinkError(f"{root} does not exist: it should hold the exported checkpoints.")
    return [checkpoint for file in files for checkpoint in _read_file(file)]


def _read_file(file: Path) -> Iterator[ExportedCheckpoint]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointSinkError(f"{file} cannot be read: {exc}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield _parse(line, where=f"{file}:{number}")


def _parse(line: str, *, where: str) -> ExportedCheckpoint:
    def bad(what: str) -> CheckpointSinkError:
        return CheckpointSinkError(f"{where} is not a signed checkpoint record: {what}.")

    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise bad("not JSON") from None
    if not isinstance(record, dict):
        raise bad("not a JSON object")
    seq, chain_hash, signed_at, fingerprint, signature = (
        record.get(name) for name in ("seq", "hash", "signed_at", "key_fingerprint", "signature")
    )
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise bad("seq must be a whole number from 1")
    if not isinstance(chain_hash, str) or not _HASH.fullmatch(chain_hash):
        raise bad("hash must be 64 lowercase hex digits")
    if not isinstance(fingerprint, str) or not fingerprint:
        raise bad("key_fingerprint is missing")
    try:
        moment = datetime.fromisoformat(signed_at) if isinstance(signed_at, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise bad("signed_at must be an ISO 8601 time with its offset")
    try:
        raw = base64.b64decode(signature, validate=True) if isinstance(signature, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != SIGNATURE_BYTES:
        raise bad("signature must be the base64 of an Ed25519 signature")
    return ExportedCheckpoint(seq, chain_hash, moment, fingerprint, raw, where)
