"""Reads of the vault core for staff: the key status (KEKs, data keys per KEK, rotation progress
and key epochs). Ids, times and counts only: no key material ever leaves the key provider."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Count

from vault.crypto import data_keys_by_kek, standalone_by_kek
from vault.keys import LocalKeyProvider, get_provider
from vault.models import DataKey

_NEVER = datetime.min.replace(tzinfo=UTC)  # sorts a KEK whose start is not recorded last


@dataclass(frozen=True)
class KekStatus:
    kek_id: str
    active: bool
    in_key_set: bool  # False: keys are still wrapped under a KEK the provider no longer has
    activated: datetime | None  # when it became active (its epoch's start), if the key set records it
    superseded: datetime | None  # when the next one became active (its epoch's end)
    destroy_after: datetime | None  # its epoch's end plus the backup retention: retired by the next epoch run then
    data_keys: int
    other_secrets: int  # sealed secrets that belong to no person (MFA, webhook secrets)


@dataclass(frozen=True)
class KeyStatus:
    provider: str  # the provider's class name
    manages_epochs: bool  # local keys in a file: epochs run here (a KMS rotates its own)
    active_kek: str
    keks: list[KekStatus]  # the active one first, then the newest
    data_keys: int
    data_keys_by_class: dict[str, int]
    pending_rewrap: int  # data keys still wrapped under a KEK that is not the active one
    pending_other: int  # the same for sealed secrets
    epoch_days: int
    backup_retention_days: int
    active_since: datetime | None
    next_epoch_due: datetime | None

    @property
    def rotation_percent(self) -> int:
        """How far the last rotation has got: the share of data keys under the active KEK."""
        if not self.data_keys:
            return 100
        return int(100 * (self.data_keys - self.pending_rewrap) / self.data_keys)


def key_status() -> KeyStatus:
    """Where the keys stand now. Two aggregate queries over the key table, whatever its size."""
    provider = get_provider()
    active = provider.active_kek_id()
    counts, other = data_keys_by_kek(), standalone_by_kek()
    held = set(provider.kek_ids())
    epochs = {}
    active_since = None
    local = isinstance(provider, LocalKeyProvider)
    if isinstance(provider, LocalKeyProvider):
        epochs = {epoch.kek_id: epoch for epoch in provider.kek_epochs()}
        active_since = provider.active_since()
    retention = timedelta(days=settings.VAULT_BACKUP_RETENTION_DAYS)
    keks = []
    for kek_id in held | set(counts) | set(other):
        epoch = epochs.get(kek_id)
        superseded = epoch.superseded if epoch else None
        keks.append(
            KekStatus(
                kek_id=kek_id,
                active=kek_id == active,
                in_key_set=kek_id in held,
                activated=epoch.activated if epoch else None,
                superseded=superseded,
                destroy_after=superseded + retention if superseded else None,
                data_keys=counts.get(kek_id, 0),
                other_secrets=other.get(kek_id, 0),
            )
        )
    keks.sort(key=lambda kek: kek.kek_id)
    keks.sort(key=lambda kek: kek.activated or _NEVER, reverse=True)  # the newest first (sorts are stable)
    keks.sort(key=lambda kek: not kek.active)
    by_class = dict(DataKey.objects.values_list("data_class").annotate(n=Count("id")).order_by("data_class"))
    epoch_days = settings.VAULT_KEY_EPOCH_DAYS
    return KeyStatus(
        provider=type(provider).__name__,
        manages_epochs=local and getattr(provider, "path", None) is not None,
        active_kek=active,
        keks=keks,
        data_keys=sum(counts.values()),
        data_keys_by_class=by_class,
        pending_rewrap=sum(n for kek_id, n in counts.items() if kek_id != active),
        pending_other=sum(n for kek_id, n in other.items() if kek_id != active),
        epoch_days=epoch_days,
        backup_retention_days=settings.VAULT_BACKUP_RETENTION_DAYS,
        active_since=active_since,
        next_epoch_due=active_since + timedelta(days=epoch_days) if active_since else None,
    )
