"""Reading profile values: one person's (the path every request takes), many people's at once
(segments, in batches of thousands), a person's earlier values, a lookup by a searchable field,
and the ages the consent age gate asks for. Each decrypts only after `planning` allowed the read
and writes one audit entry naming the fields."""

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from django.db import connection
from django.utils import timezone

from consent.errors import UnknownPurpose
from consent.selectors import consent_granted_subjects
from consent.services import age_in_years
from profiles.errors import FieldNotSearchable, PersonErased, UnknownField
from profiles.gate.actors import Actor
from profiles.gate.decrypt import decrypt_pairs, decrypt_rows
from profiles.gate.indexes import value_index
from profiles.gate.planning import (
    RIGHTS_PURPOSE,
    UNRESTRICTABLE,
    check_access,
    check_fields,
    definitions_for,
    purpose_for,
    read_plan,
)
from profiles.models import PROFILE, FieldType, ProfileValue, ProfileValueHistory, Restriction
from profiles.types import INDEX_KINDS
from vault import blind_index, crypto
from vault.audit import audit_record, audit_record_batch
from vault.fields import _id_part, decode_value
from vault.models import AuditActorType
from vault.postgres import pg_array

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FieldValue:
    """A released value with where it came from."""

    value: Any
    source: str
    source_name: str
    legal_basis: str
    collected_at: datetime
    expires_at: datetime


class Released(dict[str, "FieldValue"]):
    """What `profile_read` answers: {key: value} of the fields set, and in `fields_read` every
    field it read (and audited), set or not, in the order asked."""

    fields_read: list[str]


def profile_read(
    *,
    subject_id: uuid.UUID,
    fields: Iterable[str],
    purpose: str,
    actor: Actor,
    permitted_only: bool = False,
    reason: str = "",
) -> Released:
    """The person's values of `fields` that are set, with provenance, for `purpose`.

    Raises before decrypting anything if the purpose may not use one of the fields, lacks the
    person's consent or is stopped by a restriction; `permitted_only` reads, of `fields`, those
    the purpose may use (and refuses only when there is none). A staff member revealing values
    to themselves gives their typed `reason`: the entry is then a `profile.reveal` keeping the
    reason in its details (encrypted under the person's key). On PostgreSQL four round trips
    outside a transaction: the plan with the values, the consent check, the data key and the
    audit entry (one statement: vault/audit/append.py). Elsewhere one more for the values and
    more for the audit entry. This is the path of every request that reads a person, so it
    builds no model instances."""
    subject_id = crypto.as_subject_id(subject_id)
    if reason and actor.type != AuditActorType.STAFF:
        raise ValueError("Only a staff member reveals values with a reason.")
    target, keys, rows = read_plan(subject_id, fields, purpose, with_values=True, permitted_only=permitted_only)
    check_access(subject_id=subject_id, purpose=target)
    if rows is None:
        rows = _person_values(subject_id, list(keys))
    values = decrypt_pairs(subject_id, [(row[2], row[1]) for row in rows], ProfileValue.sealed_field())
    audit_record(
        **actor.audit(),
        action="profile.reveal" if reason else "profile.read",
        purpose=target.slug,
        fields=list(keys.values()),
        subject_id=subject_id,
        details={"reason": reason} if reason else None,
    )
    released = {keys[row[0]]: FieldValue(value, *row[3:]) for row, value in zip(rows, values, strict=True)}
    answer = Released({key: released[key] for key in keys.values() if key in released})
    answer.fields_read = list(keys.values())
    return answer


_PROVENANCE = ("definition_id", "id", "value", "source", "source_name", "legal_basis", "collected_at", "expires_at")


def _person_values(subject_id: uuid.UUID, definition_ids: list[uuid.UUID]) -> list[tuple[Any, ...]]:
    """One person's rows of these fields, ciphertext as bytes (where `read_plan` did not bring
    them)."""
    rows = ProfileValue.objects.filter(subject_id=subject_id, definition_id__in=definition_ids)
    return [(d, pk, sealed.ciphertext, *rest) for d, pk, sealed, *rest in rows.values_list(*_PROVENANCE)]


@dataclass(frozen=True)
class EarlierValue:
    """A value the person or a source replaced (rectification), kept until its retention ends."""

    key: str
    value: Any
    source: str
    source_name: str
    collected_at: datetime
    replaced_at: datetime


def profile_history_read(*, subject_id: uuid.UUID, actor: Actor) -> list[EarlierValue]:
    """The person's earlier values, newest first: for their own access and export requests only."""
    subject_id = crypto.as_subject_id(subject_id)
    rows = list(
        ProfileValueHistory.objects.filter(subject_id=subject_id).select_related("definition").order_by("-replaced_at")
    )
    values = decrypt_rows(subject_id, rows, ProfileValueHistory.sealed_field()) if rows else []
    audit_record(
        **actor.audit(),
        action="profile.history_read",
        purpose=RIGHTS_PURPOSE,
        fields=sorted({row.definition.key for row in rows}),
        subject_id=subject_id,
    )
    return [
        EarlierValue(row.definition.key, value, row.source, row.source_name, row.collected_at, row.replaced_at)
        for row, value in zip(rows, values, strict=True)
    ]


def profile_read_many(
    *, subject_ids: Iterable[uuid.UUID], fields: Iterable[str], purpose: str, actor: Actor
) -> dict[uuid.UUID, dict[str, Any]]:
    """The bulk form: values of `fields` for each permitted person among `subject_ids`.

    People without the purpose's consent, with processing restricted, erased, or holding none
    of the fields are left out (not an error: a segment is a mix). Each person's key is unwrapped
    once, and the number of queries does not grow with the number of people (pass batches of some
    thousands). One audit entry covers the people read (`audit_record_batch`). Rows are handled
    as tuples of bytes: at 100,000 values, building objects per value would cost more than
    decrypting them."""
    if purpose == RIGHTS_PURPOSE:
        raise ValueError("Rights requests are one person at a time: use profile_read.")
    return _read_many_any_purpose(subject_ids, fields, purpose, actor)


def _read_many_any_purpose(
    subject_ids: Iterable[uuid.UUID], fields: Iterable[str], purpose: str, actor: Actor
) -> dict[uuid.UUID, dict[str, Any]]:
    """`profile_read_many` without its refusal of the rights purpose (for `profile_ages` only)."""
    wanted = list(dict.fromkeys(crypto.as_subject_id(s) for s in subject_ids))
    target, keys, _ = read_plan(None, fields, purpose)
    allowed = consent_granted_subjects(subject_ids=wanted, purpose=target.slug)
    if allowed and target.legal_basis not in UNRESTRICTABLE:
        # Restrictions are rare: all of them in one small query, rather than 10,000 ids sent.
        allowed -= set(Restriction.objects.values_list("subject_id", flat=True))
    names = list(keys.values())
    found = crypto.decrypt_many(
        allowed,
        _value_rows(allowed, list(keys)) if allowed else [],
        data_class=PROFILE,
        context_prefix=ProfileValue.sealed_field()._context_prefix,
    )
    for subject in found.failed:
        # One damaged row or missing key must not stop a segment: that person is left out, and
        # the operators are told (ids only).
        logger.error("Bulk read: the values of subject %s did not decrypt; left out", subject)
    # Only the people whose values were decrypted are audited (and returned): an erased person,
    # or one holding none of the fields, was not read. One entry for the batch, naming them all:
    # each one's "who accessed my data" finds it (vault/audit/selectors.py).
    plaintexts = found.plaintexts
    read = [s for s in wanted if s in plaintexts]
    audit_record_batch(**actor.audit(), action="profile.read", purpose=target.slug, fields=names, subject_ids=read)
    return {
        s: {
            # Text, by far the most common value, decoded inline (`decode_value`'s first case).
            names[tag]: plaintext[1:].decode() if plaintext[0] == 0x73 else decode_value(plaintext)
            for tag, plaintext in plaintexts[s].items()
        }
        for s in read
    }


# Each id comes back framed as `_id_part` frames it (length prefix + 16 bytes) and each field as
# its position in the array of fields asked (from 0), by the server.
_BULK_VALUES_SQL = f"""
SELECT '\\x0010'::bytea || uuid_send(subject_id), array_position(%s::uuid[], definition_id) - 1,
       '\\x0010'::bytea || uuid_send(id), value
FROM {ProfileValue._meta.db_table}
WHERE subject_id = ANY(%s::uuid[]) AND definition_id = ANY(%s::uuid[])
"""  # noqa: S608 (a model's table name)


def _value_rows(
    subjects: Iterable[uuid.UUID], definition_ids: list[uuid.UUID]
) -> list[tuple[bytes, int, bytes, bytes]]:
    """(subject, field position, row id, ciphertext) of many people in `crypto.decrypt_many`'s
    form: the bulk read's one big query. On PostgreSQL the ids go as one array literal each,
    bound by the server (adapting 10,000 values one by one, or splicing them into the query
    text, costs more than the query), and come back in binary, framed by the server: never as
    UUID objects, and without hex decoding."""
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        fields = pg_array(i.hex for i in definition_ids)
        with psycopg.Cursor(connection.connection) as cursor:  # not Django's client-side binding
            cursor.execute(_BULK_VALUES_SQL, [fields, pg_array(i.hex for i in subjects), fields], binary=True)
            return cursor.fetchall()
    position = {pk: n for n, pk in enumerate(definition_ids)}
    query = ProfileValue.objects.filter(subject_id__in=list(subjects), definition_id__in=definition_ids)
    fetched = query.values_list("subject_id", "definition_id", "id", "value")
    return [(_id_part(s), position[d], _id_part(i), sealed.ciphertext) for s, d, i, sealed in fetched]


def profile_find(*, field: str, value: Any, purpose: str, actor: Actor) -> list[uuid.UUID]:
    """The people whose `field` equals `value`: blind-index candidates confirmed by decryption,
    among those the purpose may process. One audit entry per candidate decrypted."""
    (definition,) = definitions_for([field])
    if not definition.searchable:
        raise FieldNotSearchable()
    target = purpose_for(purpose)
    check_fields([definition], target)
    index = value_index(definition, value)
    candidates = list(
        ProfileValue.objects.filter(definition=definition, blind_index=index).values_list("subject_id", flat=True)
    )
    found = profile_read_many(subject_ids=candidates, fields=[field], purpose=purpose, actor=actor)
    normalize = blind_index.NORMALIZERS[INDEX_KINDS.get(FieldType(definition.field_type), "text")]
    wanted = normalize(value)
    return [subject for subject, values in found.items() if field in values and normalize(values[field]) == wanted]


def profile_birth_date(*, subject_id: uuid.UUID) -> tuple[date | None, str]:
    """The person's date of birth and country code, for the consent age gate; (None, "") when
    their profile holds neither.

    Read for the legal-obligation purpose: the age gate is the law's (GDPR Art. 8), and it runs
    when the person makes a choice, so a restriction of processing must not stop it."""
    try:
        held = profile_read(
            subject_id=subject_id,
            fields=["birth_date", "country"],
            purpose=RIGHTS_PURPOSE,
            actor=Actor.system("age-gate"),
        )
    except (UnknownField, UnknownPurpose, PersonErased):
        return None, ""
    country = held["country"].value if "country" in held else ""
    return (held["birth_date"].value if "birth_date" in held else None), country


def profile_ages(*, subject_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, tuple[int | None, str]]:
    """The age in years and country of many people at once (a consent import), read as
    `profile_birth_date` reads them; people the profile says nothing about are left out."""
    today = timezone.localdate()
    try:
        # The rights purpose in bulk, which `profile_read_many` refuses: as `profile_birth_date` reads
        # it, for these two fields only, so that the law's age gate sees through a restriction.
        held = _read_many_any_purpose(subject_ids, ["birth_date", "country"], RIGHTS_PURPOSE, Actor.system("age-gate"))
    except (UnknownField, UnknownPurpose):
        return {}
    return {
        subject_id: (
            age_in_years(values["birth_date"], today) if "birth_date" in values else None,
            values.get("country", ""),
        )
        for subject_id, values in held.items()
    }
