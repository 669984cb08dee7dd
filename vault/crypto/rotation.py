"""KEK rotation: rewrap every data key under the active KEK in bounded batches (one 32-byte
unwrap and wrap each), and count keys per KEK so a KEK is retired only when nothing needs it."""

import uuid
from collections.abc import Callable

from django.db import connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from vault.crypto.data_keys import dek_associated_data
from vault.keys import get_provider
from vault.models import DataKey
from vault.routers import keystore_alias


def data_keys_by_kek() -> dict[str, int]:
    """How many data keys each KEK wraps."""
    rows = DataKey.objects.values_list("kek_id").annotate(count=models.Count("id")).order_by("kek_id")
    return dict(rows)


def data_keys_rewrap(*, batch_size: int = 5000, on_batch: Callable[[int], None] | None = None) -> int:
    """Rewrap every data key not under the active KEK; returns how many were rewrapped.

    Resumable: each batch commits on its own. Passes repeat until no key is left under an old
    KEK, which also takes keys made meanwhile by processes that had not yet seen the new KEK
    (they may sort before the point a pass had reached). Only 32-byte keys are re-encrypted."""
    provider = get_provider()
    alias = keystore_alias()
    connection = connections[alias]
    done = 0
    last_id = None
    while True:
        active = provider.active_kek_id()
        batch = DataKey.objects.exclude(kek_id=active).order_by("id")
        if last_id is not None:
            batch = batch.filter(id__gt=last_id)
        rows = list(batch.values_list("id", "subject_id", "data_class", "version", "kek_id", "wrapped")[:batch_size])
        if not rows:
            if last_id is None or not DataKey.objects.exclude(kek_id=active).exists():
                return done
            last_id = None  # another pass for keys made behind this one
            continue
        updates = []
        for key_id, subject_id, data_class, version, kek_id, wrapped in rows:
            ad = dek_associated_data(subject_id, data_class, version)
            raw = provider.unwrap(bytes(wrapped), kek_id=kek_id, associated_data=ad)
            new_kek_id, new_wrapped = provider.wrap(raw, associated_data=ad)
            updates.append((key_id, kek_id, new_kek_id, new_wrapped))
        with transaction.atomic(using=alias):
            done += _write_rewrapped(connection, updates)
        last_id = rows[-1][0]
        if on_batch is not None:
            on_batch(len(rows))


def _write_rewrapped(connection: BaseDatabaseWrapper, updates: list[tuple[uuid.UUID, str, str, bytes]]) -> int:
    """Store a batch of rewrapped keys. A row is only updated if it is still wrapped by the KEK
    it was read under, so two rotations running at once cannot overwrite each other."""
    table = connection.ops.quote_name(DataKey._meta.db_table)
    now = timezone.now()
    if connection.vendor == "postgresql":
        # One statement per batch, several times faster than one UPDATE per key. On psycopg's own
        # cursor, which binds parameters on the server: Django's client-side binding would spell
        # the 5,000 keys out as escaped SQL text first.
        connection.ensure_connection()
        with connection.connection.cursor() as raw:
            raw.execute(
                f"UPDATE {table} AS d SET wrapped = v.wrapped, kek_id = v.new_kek, updated_at = %s "  # noqa: S608
                "FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::bytea[]) AS v(id, old_kek, new_kek, wrapped) "
                "WHERE d.id = v.id AND d.kek_id = v.old_kek",
                [now, *map(list, zip(*updates, strict=True))],
            )
            return int(raw.rowcount)
    pk = DataKey._meta.pk
    assert pk is not None
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET wrapped = %s, kek_id = %s, updated_at = %s WHERE id = %s AND kek_id = %s",  # noqa: S608
            [
                (wrapped, new_kek, stamp, pk.get_db_prep_value(key_id, connection), old_kek)
                for key_id, old_kek, new_kek, wrapped in updates
            ],
        )
        return int(cursor.rowcount)
