"""Per-subject data keys (DEKs): created on first write, stored only wrapped by the provider's
KEK (associated data binds subject, data class, version and KEK), unwrapped at most once per
`key_scope()` (a request, a task, a batch) and never persisted unwrapped; bulk creation for
imports; and `subject_shred`, which erases a person by deleting their keys."""

import functools
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import NamedTuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import IntegrityError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from vault.crypto.errors import DecryptionFailed, SubjectErased, as_subject_id
from vault.keys import KEY_BYTES, associated_data, get_provider
from vault.models import DataKey, ErasedSubject
from vault.routers import keystore_alias

DEK_CONTEXT = associated_data("vault-dek/1") + b"\x00\x10"  # the label, then a 16-byte subject part


def dek_associated_data(subject_id: uuid.UUID, data_class: str, version: int) -> bytes:
    """`associated_data("vault-dek/1", subject bytes, data class, version)`, built from parts
    framed once: a bulk read unwraps one key per person."""
    return DEK_CONTEXT + subject_id.bytes + dek_tail(data_class, version)


@functools.cache
def dek_tail(data_class: str, version: int) -> bytes:
    return associated_data(data_class, version.to_bytes(4))


@dataclass
class _KeyCache:
    # Keyed by the subject's UUID `int`: UUID's own __hash__ is Python code, and these lookups
    # are on the path of every decryption.
    keys: dict[tuple[int, str, int], AESGCM] = field(default_factory=dict)
    active: dict[tuple[int, str], int] = field(default_factory=dict)
    wrapped: dict[tuple[int, str, int], "DataKey | _Wrapped"] = field(default_factory=dict)
    # Keys this scope created inside a transaction that has not committed yet: never cached, so
    # a rollback cannot leave the scope encrypting under a key that no longer exists.
    uncommitted: set[tuple[int, str]] = field(default_factory=set)


_cache: ContextVar[_KeyCache | None] = ContextVar("vault_key_cache", default=None)


@contextmanager
def key_scope() -> Iterator[None]:
    """Cache unwrapped DEKs for the duration of the block (a request, a task, a batch)."""
    if _cache.get() is not None:  # already inside a scope: share it
        yield
        return
    token = _cache.set(_KeyCache())
    try:
        yield
    finally:
        _cache.reset(token)


class KeyScopeMiddleware:
    """One key scope per request: a person's data key is unwrapped once, not once per value."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with key_scope():
            return self.get_response(request)


def _unwrap(row: "DataKey | _Wrapped") -> AESGCM:
    raw = get_provider().unwrap(
        bytes(row.wrapped),
        kek_id=row.kek_id,
        associated_data=dek_associated_data(row.subject_id, row.data_class, row.version),
    )
    return AESGCM(raw)


def data_keys_prefetch(subject_ids: Iterable[uuid.UUID], data_class: str) -> None:
    """Fetch many subjects' wrapped keys in one query, for a batch job inside a `key_scope()`.
    Each is unwrapped only if that subject is actually read."""
    cache = _cache.get()
    if cache is None:
        raise RuntimeError("data_keys_prefetch() works inside a key_scope() only.")
    subjects = list(subject_ids)
    connection = connections[router.db_for_read(DataKey)]
    if connection.vendor == "postgresql":
        # 10,000 ids as one array literal, and rows as tuples: the ORM's IN list and model
        # instances cost more than the query at this size.
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT subject_id, version, kek_id, wrapped FROM {DataKey._meta.db_table} "  # noqa: S608
                "WHERE subject_id = ANY(%s::uuid[]) AND data_class = %s",
                ["{" + ",".join(subject.hex for subject in subjects) + "}", data_class],
            )
            rows = cursor.fetchall()
    else:
        rows = DataKey.objects.filter(subject_id__in=subjects, data_class=data_class).values_list(
            "subject_id", "version", "kek_id", "wrapped"
        )
    for subject_id, version, kek_id, wrapped in rows:
        cache.wrapped[(subject_id.int, data_class, version)] = _Wrapped(
            subject_id, data_class, version, kek_id, wrapped
        )


class _Wrapped(NamedTuple):
    """A wrapped data key as prefetched: the columns `_unwrap` needs, without a model instance."""

    subject_id: uuid.UUID
    data_class: str
    version: int
    kek_id: str
    wrapped: bytes


def subject_is_erased(subject_id: uuid.UUID) -> bool:
    """Whether the subject's keys were destroyed (no new key is ever made for them)."""
    return ErasedSubject.objects.filter(subject_id=subject_id).exists()


_ONE_KEY_SQL = f"""
SELECT kek_id, wrapped FROM {DataKey._meta.db_table} WHERE subject_id = %s AND data_class = %s AND version = %s
"""  # noqa: S608 (a model's table name)


def _fetch_wrapped(subject_id: uuid.UUID, data_class: str, version: int) -> "_Wrapped | None":
    """One wrapped key. In SQL on PostgreSQL: every read of a person takes this path, and the
    ORM's building of the query cost more than running it."""
    connection = connections[router.db_for_read(DataKey)]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_ONE_KEY_SQL, [subject_id, data_class, version])
            found = cursor.fetchone()
    else:
        query = DataKey.objects.filter(subject_id=subject_id, data_class=data_class, version=version)
        found = query.values_list("kek_id", "wrapped").first()
    return None if found is None else _Wrapped(subject_id, data_class, version, found[0], bytes(found[1]))


def key_for_read(subject_id: uuid.UUID, data_class: str, version: int) -> AESGCM:
    cache = _cache.get()
    if cache is not None and (aead := cache.keys.get((subject_id.int, data_class, version))) is not None:
        return aead
    row = cache.wrapped.pop((subject_id.int, data_class, version), None) if cache is not None else None
    if row is None:
        row = _fetch_wrapped(subject_id, data_class, version)
    if row is None:
        if subject_is_erased(subject_id):
            raise SubjectErased(f"Subject {subject_id} was erased.")
        raise DecryptionFailed(f"No data key v{version} of class {data_class} for subject {subject_id}.")
    aead = _unwrap(row)
    if cache is not None:
        cache.keys[(subject_id.int, data_class, version)] = aead
    return aead


def key_for_write(subject_id: uuid.UUID, data_class: str) -> tuple[int, AESGCM]:
    """The subject's newest DEK of this class, created (wrapped by the active KEK) on first use."""
    cache = _cache.get()
    if cache is not None and (version := cache.active.get((subject_id.int, data_class))) is not None:
        return version, cache.keys[(subject_id.int, data_class, version)]
    row = DataKey.objects.filter(subject_id=subject_id, data_class=data_class).order_by("-version").first()
    if row is None:
        row = _create_key(subject_id, data_class)
        alias = keystore_alias()
        if cache is not None and connections[alias].in_atomic_block:
            slot = (subject_id.int, data_class)
            cache.uncommitted.add(slot)
            transaction.on_commit(lambda: cache.uncommitted.discard(slot), using=alias)
    aead = _unwrap(row)
    if cache is not None and (subject_id.int, data_class) not in cache.uncommitted:
        cache.keys[(subject_id.int, data_class, row.version)] = aead
        cache.active[(subject_id.int, data_class)] = row.version
    return row.version, aead


def _lock_subject(alias: str, subject_id: uuid.UUID) -> None:
    """Serialize key creation and shredding of one subject (PostgreSQL; SQLite serializes all
    writes anyway), so a key can never be created after, or during, the subject's erasure."""
    connection = connections[alias]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [(subject_id.int >> 65) - (1 << 62)])


def _create_key(subject_id: uuid.UUID, data_class: str) -> DataKey:
    kek_id, wrapped = get_provider().wrap(
        AESGCM.generate_key(bit_length=KEY_BYTES * 8),
        associated_data=dek_associated_data(subject_id, data_class, 1),
    )
    alias = keystore_alias()
    try:
        with transaction.atomic(using=alias):
            _lock_subject(alias, subject_id)
            if subject_is_erased(subject_id):
                raise SubjectErased(f"Subject {subject_id} was erased; no new data key is made for them.")
            return DataKey.objects.create(
                subject_id=subject_id, data_class=data_class, version=1, kek_id=kek_id, wrapped=wrapped
            )
    except IntegrityError:  # another process created it first: use theirs
        return DataKey.objects.get(subject_id=subject_id, data_class=data_class, version=1)


def subject_shred(subject_id: uuid.UUID) -> int:
    """Destroy every data key of the subject, at once and for good. Returns how many."""
    subject_id = as_subject_id(subject_id)
    alias = keystore_alias()
    with transaction.atomic(using=alias):
        _lock_subject(alias, subject_id)
        ErasedSubject.objects.get_or_create(subject_id=subject_id)
        deleted, _ = DataKey.objects.filter(subject_id=subject_id).delete()
    cache = _cache.get()
    if cache is not None:
        cache.keys = {k: v for k, v in cache.keys.items() if k[0] != subject_id.int}
        cache.active = {k: v for k, v in cache.active.items() if k[0] != subject_id.int}
        cache.wrapped = {k: v for k, v in cache.wrapped.items() if k[0] != subject_id.int}
        cache.uncommitted = {k for k in cache.uncommitted if k[0] != subject_id.int}
    return deleted


def data_keys_create_many(subject_ids: Iterable[uuid.UUID], data_class: str, *, batch_size: int = 5000) -> int:
    """Make a first data key of `data_class` for each of many new subjects (an import, the demo
    seed), in a fixed number of queries per `batch_size` subjects, and cache the keys in the
    current `key_scope()` so the `seal()` calls that follow run no query. Returns how many
    keys were made.

    Subjects that already hold a key of the class keep it (and are not cached: a later seal looks
    theirs up as usual); erased subjects get none (sealing for them then raises
    `SubjectErased`). Wrapping and associated data are `_create_key`'s: version 1, bound to
    subject, class and version.

    Erasure is held off with a SHARE lock on the erased-subjects table (PostgreSQL) rather than
    `_lock_subject`'s per-subject advisory locks, which would fill the server's lock table for a
    batch of thousands: an erasure that began first is waited for and then seen; one that
    begins later waits until these keys are committed, then destroys them like any other.

    Called inside a transaction on the keystore database, the keys are cached before they are
    committed: let the key scope end with that transaction (`with transaction.atomic(),
    key_scope(): ...`). A scope that outlived a rollback would encrypt under keys never stored.
    """
    cache = _cache.get()
    if cache is None:
        raise RuntimeError("data_keys_create_many() works inside a key_scope() only.")
    subjects = list(dict.fromkeys(as_subject_id(s) for s in subject_ids))
    alias = keystore_alias()
    connection = connections[alias]
    provider = get_provider()
    made = 0
    for chunk in _chunks(subjects, batch_size):
        with transaction.atomic(using=alias):
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    table = connection.ops.quote_name(ErasedSubject._meta.db_table)
                    cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")
            taken = set(
                DataKey.objects.using(alias)
                .filter(subject_id__in=chunk, data_class=data_class)
                .values_list("subject_id", flat=True)
            )
            taken.update(
                ErasedSubject.objects.using(alias).filter(subject_id__in=chunk).values_list("subject_id", flat=True)
            )
            fresh: list[tuple[uuid.UUID, bytes, str, bytes]] = []
            for subject_id in chunk:
                if subject_id in taken:
                    continue
                raw = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
                kek_id, wrapped = provider.wrap(raw, associated_data=dek_associated_data(subject_id, data_class, 1))
                fresh.append((subject_id, raw, kek_id, wrapped))
            if not fresh:
                continue
            stored = _insert_keys(connection, data_class, fresh)
        for subject_id, raw, _, _ in fresh:
            if subject_id.int in stored:
                cache.keys[(subject_id.int, data_class, 1)] = AESGCM(raw)
                cache.active[(subject_id.int, data_class)] = 1
        made += len(stored)
    return made


def _chunks(items: list[uuid.UUID], size: int) -> Iterator[list[uuid.UUID]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert_keys(
    connection: BaseDatabaseWrapper, data_class: str, fresh: list[tuple[uuid.UUID, bytes, str, bytes]]
) -> set[int]:
    """Insert version-1 keys; returns the subjects (as `int`) whose key was stored. On PostgreSQL
    one statement over arrays sent as text literals of hex, which skips a key another process
    made meanwhile (theirs is kept, ours dropped) instead of failing the batch."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(DataKey._meta.db_table)

        def array(values: Iterable[str]) -> str:
            # One text parameter per column: psycopg adapting thousands of values one by one
            # costs more than the insert. Elements are quoted (a KMS key id may hold anything).
            return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"

        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (id, subject_id, data_class, version, kek_id, wrapped, created_at, updated_at) "  # noqa: S608
                "SELECT gen_random_uuid(), v.subject_id, %s, 1, v.kek_id, decode(v.wrapped, 'hex'), %s, %s "
                "FROM unnest(%s::uuid[], %s::text[], %s::text[]) AS v(subject_id, kek_id, wrapped) "
                "ON CONFLICT DO NOTHING RETURNING subject_id",
                [
                    data_class,
                    now,
                    now,
                    array(s.hex for s, _, _, _ in fresh),
                    array(kek_id for _, _, kek_id, _ in fresh),
                    array(wrapped.hex() for _, _, _, wrapped in fresh),
                ],
            )
            return {as_subject_id(row[0]).int for row in cursor.fetchall()}
    # SQLite serializes writers: a key made by another process since the lookup fails this
    # transaction (a busy database) rather than being overwritten.
    DataKey.objects.using(connection.alias).bulk_create(
        DataKey(subject_id=s, data_class=data_class, version=1, kek_id=kek_id, wrapped=wrapped)
        for s, _, kek_id, wrapped in fresh
    )
    return {s.int for s, _, _, _ in fresh}


def data_keys_for_write_many(subject_ids: Iterable[uuid.UUID], data_class: str) -> set[uuid.UUID]:
    """Ready many subjects' data keys of `data_class` for sealing in the current `key_scope()`
    (a batch of events from a partner): the newest key of those who hold one is fetched (one
    query) and unwrapped, the others get a first key (`data_keys_create_many`), so the `seal()`
    calls that follow run no query. Returns the subjects that can be sealed for: an erased one
    is left out.

    Call it outside the transaction that stores the sealed rows (keys made here then commit
    first), so a rollback of that transaction cannot leave the scope holding keys never stored."""
    cache = _cache.get()
    if cache is None:
        raise RuntimeError("data_keys_for_write_many() works inside a key_scope() only.")
    subjects = list(dict.fromkeys(as_subject_id(s) for s in subject_ids))
    missing = [s for s in subjects if (s.int, data_class) not in cache.active]
    if not missing:
        return set(subjects)
    newest: dict[int, tuple[uuid.UUID, int, str, bytes]] = {}
    rows = DataKey.objects.filter(subject_id__in=missing, data_class=data_class).values_list(
        "subject_id", "version", "kek_id", "wrapped"
    )
    for subject_id, version, kek_id, wrapped in rows:
        held = newest.get(subject_id.int)
        if held is None or held[1] < version:
            newest[subject_id.int] = (subject_id, version, kek_id, bytes(wrapped))
    for subject_id, version, kek_id, wrapped in newest.values():
        cache.keys[(subject_id.int, data_class, version)] = _unwrap(
            _Wrapped(subject_id, data_class, version, kek_id, wrapped)
        )
        cache.active[(subject_id.int, data_class)] = version
    if fresh := [s for s in missing if s.int not in newest]:
        data_keys_create_many(fresh, data_class)
    return {s for s in subjects if (s.int, data_class) in cache.active}
