"""The bulk read: many people's values decrypted in one pass, with one key query for all and
each key unwrapped on first use (the gate's `profile_read_many`)."""

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import connections, router

from vault.crypto.data_keys import DEK_CONTEXT, dek_tail
from vault.crypto.envelope import FORMAT_V1, HEADER_BYTES
from vault.crypto.errors import DecryptionFailed
from vault.keys import UnwrapFailed, get_provider
from vault.models import DataKey, ErasedSubject

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
                ciphertext[5:HEADER_BYTES], ciphertext[HEADER_BYTES:], context_prefix + row_part + subject_part
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
        wrapped_key, kek_id=kek_id, associated_data=DEK_CONTEXT + subject + dek_tail(data_class, version)
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
