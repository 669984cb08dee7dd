"""Envelope encryption: per-subject data keys (DEKs) wrapped by the provider's KEK, and
AES-256-GCM values under those DEKs.

Value envelope (format 1): ``0x01 | DEK version (4 bytes, big-endian) | nonce (12) | ciphertext+tag``.
The associated data binds what a ciphertext belongs to (model, field, row id, subject), so a
ciphertext copied to another row, field or person fails to authenticate.

Unwrapped DEKs are cached only inside a `key_scope()` (one request, one task, one batch) and
never written anywhere. Erasing a subject deletes their wrapped DEKs: from then on every read of
their data raises `SubjectErased`, including reads of ciphertexts restored from a backup.
"""

import base64
import functools
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import IntegrityError, connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from vault.errors import ApplicationError, ErrorKind
from vault.keys import KEY_BYTES, NONCE_BYTES, UnwrapFailed, VaultError, associated_data, get_provider
from vault.models import DataKey, ErasedSubject
from vault.routers import keystore_alias

FORMAT_V1 = 1
_HEADER = 1 + 4 + NONCE_BYTES


class SubjectErased(VaultError, ApplicationError):
    """The subject's keys were destroyed: their data is gone for good (410 on the API)."""

    kind = ErrorKind.GONE
    code = "person_erased"
    message = "This person's data was erased."


class DecryptionFailed(VaultError):
    """A ciphertext did not authenticate: tampered, moved to another row/field/subject, or corrupt."""


def as_subject_id(value: uuid.UUID | str) -> uuid.UUID:
    """Subjects are UUIDs; a UUID given as text is accepted, anything else is a bug."""
    return value if type(value) is uuid.UUID else uuid.UUID(str(value))


_DEK_CONTEXT = associated_data("vault-dek/1") + b"\x00\x10"  # the label, then a 16-byte subject part


def _dek_associated_data(subject_id: uuid.UUID, data_class: str, version: int) -> bytes:
    """`associated_data("vault-dek/1", subject bytes, data class, version)`, built from parts
    framed once: a bulk read unwraps one key per person."""
    return _DEK_CONTEXT + subject_id.bytes + _dek_tail(data_class, version)


@functools.cache
def _dek_tail(data_class: str, version: int) -> bytes:
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
        associated_data=_dek_associated_data(row.subject_id, row.data_class, row.version),
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


def _is_erased(subject_id: uuid.UUID) -> bool:
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


def _key_for_read(subject_id: uuid.UUID, data_class: str, version: int) -> AESGCM:
    cache = _cache.get()
    if cache is not None and (aead := cache.keys.get((subject_id.int, data_class, version))) is not None:
        return aead
    row = cache.wrapped.pop((subject_id.int, data_class, version), None) if cache is not None else None
    if row is None:
        row = _fetch_wrapped(subject_id, data_class, version)
    if row is None:
        if _is_erased(subject_id):
            raise SubjectErased(f"Subject {subject_id} was erased.")
        raise DecryptionFailed(f"No data key v{version} of class {data_class} for subject {subject_id}.")
    aead = _unwrap(row)
    if cache is not None:
        cache.keys[(subject_id.int, data_class, version)] = aead
    return aead


def _key_for_write(subject_id: uuid.UUID, data_class: str) -> tuple[int, AESGCM]:
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
        associated_data=_dek_associated_data(subject_id, data_class, 1),
    )
    alias = keystore_alias()
    try:
        with transaction.atomic(using=alias):
            _lock_subject(alias, subject_id)
            if _is_erased(subject_id):
                raise SubjectErased(f"Subject {subject_id} was erased; no new data key is made for them.")
            return DataKey.objects.create(
                subject_id=subject_id, data_class=data_class, version=1, kek_id=kek_id, wrapped=wrapped
            )
    except IntegrityError:  # another process created it first: use theirs
        return DataKey.objects.get(subject_id=subject_id, data_class=data_class, version=1)


def encrypt(plaintext: bytes, *, subject_id: uuid.UUID, data_class: str, context: bytes) -> bytes:
    version, aead = _key_for_write(as_subject_id(subject_id), data_class)
    nonce = os.urandom(NONCE_BYTES)
    return b"\x01" + version.to_bytes(4, "big") + nonce + aead.encrypt(nonce, plaintext, context)


def decrypt(ciphertext: bytes, *, subject_id: uuid.UUID, data_class: str, context: bytes) -> bytes:
    return decrypt_for_subject(subject_id, [(ciphertext, context)], data_class=data_class)[0]


def decrypt_for_subject(
    subject_id: uuid.UUID,
    items: Iterable[tuple[bytes, bytes]],
    *,
    data_class: str,
    context_prefix: bytes = b"",
    context_suffix: bytes = b"",
) -> list[bytes]:
    """Decrypt many of one subject's values; each item is (ciphertext, context), and the
    associated data is `context_prefix + context + context_suffix`.

    The access gate reads a person's values together, so the key is looked up once, not once per
    value, and the parts of the associated data shared by all values are passed once. This is
    the hot path of every read: kept deliberately tight."""
    subject_id = as_subject_id(subject_id)
    plaintexts: list[bytes] = []
    append = plaintexts.append
    header, aead = b"", None  # format byte + DEK version of the key in hand
    for ciphertext, context in items:
        try:
            if not ciphertext.startswith(header) or not header:
                if ciphertext[0] != FORMAT_V1:
                    raise DecryptionFailed("Not a vault ciphertext of a known format.")
                header = ciphertext[:5]
                aead = _key_for_read(subject_id, data_class, int.from_bytes(header[1:]))
            append(
                aead.decrypt(  # type: ignore[union-attr]
                    ciphertext[5:_HEADER], ciphertext[_HEADER:], context_prefix + context + context_suffix
                )
            )
        except (InvalidTag, ValueError, IndexError):
            raise DecryptionFailed("Ciphertext did not authenticate (tampered, moved or truncated).") from None
    return plaintexts


_SUBJECT_FRAME = b"\x00\x10"  # `associated_data`'s length prefix of a 16-byte id


@dataclass
class BulkRead:
    """What `decrypt_many` found: each subject's plaintexts by tag, and who failed (a value did
    not authenticate, or a data key is missing; erased subjects are left out of both)."""

    plaintexts: dict[uuid.UUID, dict[Any, bytes]]
    failed: list[uuid.UUID]


def decrypt_many(
    subject_ids: Iterable[uuid.UUID],
    rows: Iterable[tuple[bytes, Any, bytes, bytes]],
    *,
    data_class: str,
    context_prefix: bytes,
) -> BulkRead:
    """Decrypt many subjects' values of one data class in one pass: the bulk read's hot loop.

    Each row is (subject part, tag, row part, ciphertext): the subject and row ids framed as
    `vault.fields._id_part` frames them for the associated data (`context_prefix + row part +
    subject part`), and a tag that names the value for the caller (a field). Rows may come in
    any order. The subjects' wrapped keys are fetched in one query and each is unwrapped once;
    a subject any of whose values does not decrypt is left out whole, and so is one whose keys
    were destroyed (erased). A KEK the provider does not have raises `UnknownKek`: that is the
    key set's fault, not one person's. Nothing is cached beyond the call.

    Written for speed, as `decrypt_for_subject` is: at 100,000 values every step per value
    shows, so rows are not grouped (a dict lookup per row is cheaper than sorting them), ids
    stay bytes and no object is made per value."""
    by_part = {_SUBJECT_FRAME + s.bytes: s for s in subject_ids}
    if not by_part:
        return BulkRead(plaintexts={}, failed=[])
    wrapped = _wrapped_many(list(by_part.values()), data_class)
    found: dict[bytes, dict[Any, bytes]] = {}
    # Per subject: the envelope header of the key in hand, its decrypt, and the subject's answer.
    keys: dict[bytes, tuple[bytes, Callable[[bytes, bytes, bytes], bytes], dict[Any, bytes]]] = {}
    older: dict[bytes, Callable[[bytes, bytes, bytes], bytes]] = {}  # subject + header: other versions
    bad: set[bytes] = set()
    for subject_part, tag, row_part, ciphertext in rows:
        try:
            header, decrypt_value, out = keys[subject_part]
        except KeyError:
            if subject_part in bad or subject_part not in by_part:
                continue
            header = ciphertext[:5]
            try:
                decrypt_value = _bulk_key(wrapped, subject_part[2:], data_class, header)
            except (DecryptionFailed, UnwrapFailed):
                bad.add(subject_part)
                continue
            out = found[subject_part] = {}
            keys[subject_part] = (header, decrypt_value, out)
        try:
            if not ciphertext.startswith(header):  # under another DEK version than the first seen
                other = subject_part + ciphertext[:5]
                if other not in older:
                    older[other] = _bulk_key(wrapped, subject_part[2:], data_class, ciphertext[:5])
                decrypt_value = older[other]
            out[tag] = decrypt_value(
                ciphertext[5:_HEADER], ciphertext[_HEADER:], context_prefix + row_part + subject_part
            )
        except (InvalidTag, ValueError, IndexError, DecryptionFailed, UnwrapFailed):
            bad.add(subject_part)
    without_keys = [by_part[part] for part in bad if part[2:] not in wrapped]
    erased = set()
    if without_keys:
        erased = set(ErasedSubject.objects.filter(subject_id__in=without_keys).values_list("subject_id", flat=True))
    return BulkRead(
        plaintexts={by_part[part]: out for part, out in found.items() if part not in bad},
        failed=[by_part[part] for part in bad if by_part[part] not in erased],
    )


def _bulk_key(
    wrapped: dict[bytes, dict[int, tuple[str, bytes]]], subject: bytes, data_class: str, header: bytes
) -> Callable[[bytes, bytes, bytes], bytes]:
    """The decrypt of the DEK that an envelope's `header` (format byte, version) names."""
    if len(header) != 5 or header[0] != FORMAT_V1:
        raise DecryptionFailed("Not a vault ciphertext of a known format.")
    version = int.from_bytes(header[1:])
    found = wrapped.get(subject, {}).get(version)
    if found is None:
        raise DecryptionFailed(f"No data key v{version} of class {data_class}.")
    kek_id, wrapped_key = found
    raw = get_provider().unwrap(
        wrapped_key, kek_id=kek_id, associated_data=_DEK_CONTEXT + subject + _dek_tail(data_class, version)
    )
    return AESGCM(raw).decrypt


def _wrapped_many(subject_ids: list[uuid.UUID], data_class: str) -> dict[bytes, dict[int, tuple[str, bytes]]]:
    """{subject as 16 bytes: {version: (kek_id, wrapped)}} of one data class, in one query."""
    connection = connections[router.db_for_read(DataKey)]
    if connection.vendor == "postgresql":
        # The ids as one array literal and back as bytes, on a binary cursor: the ORM's IN list,
        # UUID objects and hex decoding cost more than the query at this size.
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:  # not Django's client-side binding
            cursor.execute(
                f"SELECT uuid_send(subject_id), version, kek_id, wrapped FROM {DataKey._meta.db_table} "  # noqa: S608
                "WHERE subject_id = ANY(%s::uuid[]) AND data_class = %s",
                ["{" + ",".join(subject.hex for subject in subject_ids) + "}", data_class],
                binary=True,
            )
            rows = cursor.fetchall()
    else:
        rows = [
            (subject.bytes, version, kek_id, bytes(wrapped))
            for subject, version, kek_id, wrapped in DataKey.objects.filter(
                subject_id__in=subject_ids, data_class=data_class
            ).values_list("subject_id", "version", "kek_id", "wrapped")
        ]
    found: dict[bytes, dict[int, tuple[str, bytes]]] = {}
    for subject, version, kek_id, wrapped in rows:
        found.setdefault(subject, {})[version] = (kek_id, wrapped)
    return found


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


# --- Envelopes that belong to no subject ---------------------------------------------------------


def encrypt_standalone(plaintext: bytes, *, context: bytes) -> dict[str, str]:
    """Encrypt data that belongs to no subject yet (pending sign-in state, before any person
    exists) under a fresh key of its own, kept wrapped by the active KEK, both bound to
    `context`. JSON-safe, base64: {"kek": KEK id, "key": wrapped key, "body": nonce + ciphertext}."""
    key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
    nonce = os.urandom(NONCE_BYTES)
    body = AESGCM(key).encrypt(nonce, plaintext, context)
    kek_id, wrapped = get_provider().wrap(key, associated_data=context)
    return {"kek": kek_id, "key": base64.b64encode(wrapped).decode(), "body": base64.b64encode(nonce + body).decode()}


def decrypt_standalone(envelope: Mapping[str, str], *, context: bytes) -> bytes:
    """What `encrypt_standalone` sealed under `context`. Raises `DecryptionFailed` for a damaged
    or moved envelope, and the provider's errors for a retired KEK or a wrapped key that does
    not authenticate."""
    try:
        wrapped = base64.b64decode(envelope["key"], validate=True)
        body = base64.b64decode(envelope["body"], validate=True)
        kek_id = envelope["kek"]
    except (KeyError, TypeError, ValueError):
        raise DecryptionFailed("Not a standalone envelope.") from None
    key = get_provider().unwrap(wrapped, kek_id=kek_id, associated_data=context)
    try:
        return AESGCM(key).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], context)
    except (InvalidTag, ValueError):
        raise DecryptionFailed("Envelope did not authenticate (tampered, moved or truncated).") from None


def standalone_rewrap(envelope: Mapping[str, str], *, context: bytes) -> dict[str, str] | None:
    """The envelope with its key rewrapped under the active KEK (the body is left as it is), or
    None when it already is: for holders of long-lived envelopes, at KEK rotation."""
    provider = get_provider()
    active = provider.active_kek_id()
    if envelope["kek"] == active:
        return None
    key = provider.unwrap(
        base64.b64decode(envelope["key"], validate=True), kek_id=envelope["kek"], associated_data=context
    )
    kek_id, wrapped = provider.wrap(key, associated_data=context)
    return {**envelope, "kek": kek_id, "key": base64.b64encode(wrapped).decode()}


# Apps that keep standalone envelopes beyond a request (MFA secrets) take part in KEK rotation:
# `vault_keys rotate` sends `standalone_rewrap_requested` (receivers rewrap theirs with
# `standalone_rewrap` and return how many), and `status` and `retire` send
# `standalone_count_requested` (receivers return {kek_id: how many envelopes it wraps}), so a
# KEK is never destroyed while something still needs it.
standalone_rewrap_requested = Signal()
standalone_count_requested = Signal()


def standalone_rewrap_all() -> int:
    return sum(cast(int, done) for _, done in standalone_rewrap_requested.send(sender=None))


def standalone_by_kek() -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, found in standalone_count_requested.send(sender=None):
        for kek_id, count in cast(dict[str, int], found).items():
            counts[kek_id] = counts.get(kek_id, 0) + count
    return counts


# --- KEK rotation -------------------------------------------------------------------------------


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
            ad = _dek_associated_data(subject_id, data_class, version)
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


# --- Bulk key creation --------------------------------------------------------------------------


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
                kek_id, wrapped = provider.wrap(raw, associated_data=_dek_associated_data(subject_id, data_class, 1))
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
