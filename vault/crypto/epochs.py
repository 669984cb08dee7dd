"""Key epochs: erasure that reaches backups (docs/backups.md).

A backup holds data keys wrapped by the KEKs of its time. Every `VAULT_KEY_EPOCH_DAYS` a new KEK
becomes active and every data key and standalone secret is rewrapped under it, so the live
database no longer needs the old KEK; `VAULT_BACKUP_RETENTION_DAYS` after that epoch ended, the
old KEK is destroyed, and with it every backup's only way to the keys of that epoch. An erased
person's keys, still present in an old backup, then open nothing. The live data never notices.

`key_epoch_advance` does it all and is safe to repeat: the beat task, `vault_keys epoch` and two
workers at once (one of them waits for nothing and reports `busy`).
"""

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.utils import timezone

from vault.crypto.rotation import data_keys_by_kek, data_keys_rewrap
from vault.crypto.standalone import standalone_by_kek, standalone_rewrap_all
from vault.keys import LocalKeyProvider, VaultError, get_provider
from vault.routers import keystore_alias

logger = logging.getLogger(__name__)

# pg_try_advisory_lock's key for the epoch run: any fixed number no other lock of the app uses
# (the per-subject locks of data_keys.py are derived from UUIDs, spread over the whole range).
_EPOCH_LOCK_KEY = 0x7661756C74_0E90C  # "vault" + "epoc"


@dataclass(frozen=True)
class EpochReport:
    """What one run did. `skipped` says why it did nothing ("provider": the keys are not ours to
    change; "busy": another run holds the lock)."""

    skipped: str | None = None
    new_kek: str | None = None
    rewrapped: int = 0
    standalone_rewrapped: int = 0
    retired: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # old KEKs left after the run: in retention or still needed


def key_epoch_advance(*, now: datetime | None = None, batch_size: int = 5000) -> EpochReport:
    """Retire the KEKs whose epoch ended more than `VAULT_BACKUP_RETENTION_DAYS` ago and wrap
    nothing, then, if the active KEK is older than `VAULT_KEY_EPOCH_DAYS`, make a new one active
    and rewrap every data key and standalone secret under it (as `vault_keys rotate` does).

    Retiring comes first: a KEK made active in this run must not hold up a retirement for the
    minute running processes need to see it (`LocalKeyProvider.remove_kek`). Rewrapping runs on
    every call, so a rotation cut short (a worker lost mid-way) is finished by the next one."""
    now = now or timezone.now()
    provider = get_provider()
    if not isinstance(provider, LocalKeyProvider) or provider.path is None:
        logger.info(
            "key epoch skipped: %s keys cannot be changed here (a KMS rotates its own; VAULT_KEKS is read-only)",
            type(provider).__name__,
        )
        return EpochReport(skipped="provider")
    with _epoch_lock(provider.path) as held:
        if not held:
            logger.info("key epoch skipped: another run holds the lock")
            return EpochReport(skipped="busy")
        provider.reload()
        retired = _retire_expired(provider, now=now)
        new_kek = None
        since = provider.active_since()
        if since is None or now - since >= timedelta(days=settings.VAULT_KEY_EPOCH_DAYS):
            new_kek = provider.add_kek(now=now)
            logger.info("key epoch: new active KEK %s", new_kek)
        rewrapped = data_keys_rewrap(batch_size=batch_size)
        standalone = standalone_rewrap_all()
        active = provider.active_kek_id()
        kept = [kek_id for kek_id in provider.kek_ids() if kek_id != active]
    if rewrapped or standalone:
        logger.info("key epoch: rewrapped %d data key(s) and %d other secret(s)", rewrapped, standalone)
    return EpochReport(
        new_kek=new_kek, rewrapped=rewrapped, standalone_rewrapped=standalone, retired=retired, kept=kept
    )


def _retire_expired(provider: LocalKeyProvider, *, now: datetime) -> list[str]:
    retention = timedelta(days=settings.VAULT_BACKUP_RETENTION_DAYS)
    retired: list[str] = []
    for epoch in provider.kek_epochs():
        if epoch.active:
            continue
        if epoch.superseded is None:
            # A key set from before the times were kept: count the retention from now, so no
            # backup that may still need this KEK loses it earlier than promised.
            provider.superseded_record(epoch.kek_id, at=now)
            continue
        if now - epoch.superseded <= retention:
            continue
        try:
            provider.remove_kek(
                epoch.kek_id,
                still_used=lambda kek: data_keys_by_kek().get(kek, 0) + standalone_by_kek().get(kek, 0),
                now=now,
            )
        except VaultError as exc:
            logger.warning("key epoch: %s kept past its retention: %s", epoch.kek_id, exc)
            continue
        logger.info("key epoch: retired and destroyed %s", epoch.kek_id)
        retired.append(epoch.kek_id)
    return retired


@contextmanager
def _epoch_lock(key_path: Path) -> Iterator[bool]:
    """Held by one run at a time; yields False at once when another run holds it. A file lock
    beside the key file (processes sharing it) and, on PostgreSQL, an advisory lock on the
    keystore database (workers on several machines)."""
    lock_path = key_path.with_name(f".{key_path.name}.epoch.lock")
    with open(lock_path, "a") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            with _database_lock() as held:
                yield held
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


@contextmanager
def _database_lock() -> Iterator[bool]:
    connection = connections[keystore_alias()]
    if connection.vendor != "postgresql":
        yield True  # SQLite: one machine, which the file lock covers
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_EPOCH_LOCK_KEY])
        (held,) = cursor.fetchone()
    if not held:
        yield False
        return
    try:
        yield True
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_EPOCH_LOCK_KEY])
