"""The access gate (DESIGN.md invariant 2): the one place where profile data is decrypted.

Every read names a subject, the fields or kinds wanted, a purpose and an actor. The gate checks
the purpose exists, that its legal basis holds for the person (their consent, for a
consent-based purpose), that the person has not restricted processing, and that each field may
serve the purpose; then it decrypts only what was permitted and writes one audit entry naming
the fields, actor and purpose (never the values). The person's own rights (access, export,
rectification) use the `data-subject-rights` purpose, which every field serves.

A test fails if any other module calls the decryption primitives (`vault.fields.unseal*`,
`vault.crypto.decrypt*`).
"""

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from consent.errors import UnknownPurpose
from consent.models import LegalBasis, Purpose
from consent.selectors import consent_granted_subjects, consent_is_granted
from consent.services import age_in_years
from profiles.errors import (
    ConsentRequired,
    FieldDeprecated,
    FieldNotEditable,
    FieldNotForPurpose,
    FieldNotSearchable,
    InvalidValue,
    PersonErased,
    ProcessingRestricted,
    ProfileError,
    SourceNotAllowed,
    UnknownField,
    UnknownKind,
)
from profiles.models import (
    PROFILE,
    FieldDefinition,
    FieldType,
    ProfileDocument,
    ProfileEvent,
    ProfileValue,
    ProfileValueHistory,
    RecordKind,
    Restriction,
    Source,
)
from profiles.types import INDEX_KINDS, document_clean, value_clean
from vault import blind_index, crypto
from vault.audit import audit_record, audit_record_many
from vault.blind_index import BlindIndex
from vault.errors import InvalidInput
from vault.fields import SealedField, _id_part, decode_value, seal
from vault.models import AuditActorType
from vault.postgres import pg_array

logger = logging.getLogger(__name__)
RIGHTS_PURPOSE = "data-subject-rights"
ACCOUNT_PURPOSE = "account-management"  # identity resolution (merging profiles) serves it
# Bases that a restriction of processing does not stop (GDPR Art. 18(2): legal claims, rights).
_UNRESTRICTABLE = {LegalBasis.LEGAL_OBLIGATION}


@dataclass(frozen=True)
class Actor:
    """Who is asking: the person themselves, a staff member, a partner client or the system.
    A person is named by their subject id (the audit log turns it into a pseudonym)."""

    type: str
    id: str = ""
    subject_id: uuid.UUID | None = None

    @classmethod
    def person(cls, subject_id: uuid.UUID) -> "Actor":
        return cls(AuditActorType.PERSON, subject_id=crypto.as_subject_id(subject_id))

    @classmethod
    def staff(cls, user_id: object) -> "Actor":
        return cls(AuditActorType.STAFF, id=str(user_id))

    @classmethod
    def partner(cls, client_id: str) -> "Actor":
        return cls(AuditActorType.PARTNER, id=client_id)

    @classmethod
    def system(cls, name: str) -> "Actor":
        return cls(AuditActorType.SYSTEM, id=name)

    def audit(self) -> dict[str, Any]:
        return {"actor_type": self.type, "actor_id": self.id, "actor_subject_id": self.subject_id}


@dataclass(frozen=True)
class FieldValue:
    """A released value with where it came from."""

    value: Any
    source: str
    source_name: str
    legal_basis: str
    collected_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Record:
    """A released document or event."""

    id: uuid.UUID
    kind: str
    body: Any
    source: str
    source_name: str
    occurred_at: datetime
    expires_at: datetime


def _purpose(slug: str) -> Purpose:
    purpose = Purpose.objects.filter(slug=slug).first()
    if purpose is None:
        raise UnknownPurpose()
    return purpose


# The read path's one schema query: the purpose, whether the person restricted processing, and
# for each field asked whether it serves the purpose; on PostgreSQL a single read also takes the
# person's rows of those fields with it (ciphertext only: nothing is decrypted before the checks
# pass). Written as SQL because the ORM's building of the same queries cost more than running
# them, on a path every request takes.
_SCHEMA_SQL = """
SELECT p.id, p.legal_basis, EXISTS (SELECT 1 FROM {restriction} r WHERE r.subject_id = %s),
       f.id, f.key, EXISTS (SELECT 1 FROM {serves} s WHERE s.fielddefinition_id = f.id AND s.purpose_id = p.id)
       {value_columns}
FROM {purpose} p LEFT JOIN {field} f ON f.key IN ({keys}) {value_join}
WHERE p.slug = %s
"""
_VALUE_COLUMNS = ", v.id, v.value, v.source, v.source_name, v.legal_basis, v.collected_at, v.expires_at"
_VALUE_JOIN = f"LEFT JOIN {ProfileValue._meta.db_table} v ON v.definition_id = f.id AND v.subject_id = %s"


def _read_plan(
    subject_id: uuid.UUID | None, keys: Iterable[str], slug: str, *, with_values: bool = False
) -> tuple[Purpose, dict[uuid.UUID, str], list[tuple[Any, ...]] | None]:
    """The purpose (with `restricted` set for this person), {definition id: key} of `keys` in the
    order asked, once each is known to serve the purpose, and, `with_values` on PostgreSQL, the
    person's rows of them as `_person_values` gives them (else None). Raises the gate's typed
    errors."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        raise UnknownField("Name at least one field.", param="fields")
    joined = with_values and subject_id is not None and connection.vendor == "postgresql"
    sql = _SCHEMA_SQL.format(
        restriction=Restriction._meta.db_table,
        serves=FieldDefinition.purposes.through._meta.db_table,
        purpose=Purpose._meta.db_table,
        field=FieldDefinition._meta.db_table,
        keys=", ".join(["%s"] * len(wanted)),
        value_columns=_VALUE_COLUMNS if joined else "",
        value_join=_VALUE_JOIN if joined else "",
    )
    subject_param = Restriction._meta.pk.get_db_prep_value(subject_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [subject_param, *wanted, *([subject_param] if joined else []), slug])
        rows = cursor.fetchall()
    if not rows:
        raise UnknownPurpose()
    purpose = Purpose(id=rows[0][0], slug=slug, legal_basis=rows[0][1])
    purpose.restricted = bool(rows[0][2])  # type: ignore[attr-defined]
    to_id = FieldDefinition._meta.pk.to_python  # SQLite answers uuids as text
    found = {row[4]: (to_id(row[3]), bool(row[5])) for row in rows if row[4] is not None}
    for key in wanted:
        if key not in found:
            raise UnknownField(param=key)
        if slug != RIGHTS_PURPOSE and not found[key][1]:
            raise FieldNotForPurpose(param=key)
    values = None
    if joined:
        values = [(row[3], row[6], bytes(row[7]), *row[8:]) for row in rows if row[6] is not None]
    return purpose, {found[key][0]: key for key in wanted}, values


def definitions_for(keys: Iterable[str]) -> list[FieldDefinition]:
    """The definitions of `keys`, in the order asked, with the purposes each serves."""
    wanted = list(dict.fromkeys(keys))
    found = {d.key: d for d in FieldDefinition.objects.filter(key__in=wanted).prefetch_related("purposes")}
    for key in wanted:
        if key not in found:
            raise UnknownField(param=key)
    return [found[key] for key in wanted]


def _check_fields(definitions: Sequence[FieldDefinition], purpose: Purpose) -> None:
    if purpose.slug == RIGHTS_PURPOSE:
        return
    for definition in definitions:
        if purpose.pk not in {p.pk for p in definition.purposes.all()}:
            raise FieldNotForPurpose(param=definition.key)


def _is_restricted(subject_id: uuid.UUID, purpose: Purpose) -> bool:
    if purpose.slug == RIGHTS_PURPOSE or purpose.legal_basis in _UNRESTRICTABLE:
        return False
    restricted = getattr(purpose, "restricted", None)  # looked up with the purpose, when it was
    return Restriction.objects.filter(subject_id=subject_id).exists() if restricted is None else restricted


def check_access(*, subject_id: uuid.UUID, purpose: Purpose) -> None:
    """Refuse unless `purpose` may process the person's data now (basis, consent, restriction)."""
    if purpose.slug != RIGHTS_PURPOSE and not consent_is_granted(subject_id=subject_id, purpose=purpose.slug):
        raise ConsentRequired()
    if _is_restricted(subject_id, purpose):
        raise ProcessingRestricted()


def _decrypt_rows(subject_id: uuid.UUID, rows: Sequence[Any], field: SealedField) -> list[Any]:
    """Decrypt `field` of rows that all belong to `subject_id`, one key lookup for all."""
    return _decrypt(subject_id, [(getattr(row, field.attname).ciphertext, row.pk) for row in rows], field)


def _decrypt(subject_id: uuid.UUID, items: list[tuple[bytes, Any]], field: SealedField) -> list[Any]:
    """Decrypt one person's (ciphertext, row id) pairs of `field`; an erased person is a typed error."""
    items = [(ciphertext, _id_part(pk)) for ciphertext, pk in items]
    try:
        plaintexts = crypto.decrypt_for_subject(
            subject_id,
            items,
            data_class=field.data_class,
            context_prefix=field._context_prefix,
            context_suffix=_id_part(subject_id),
        )
    except crypto.SubjectErased:
        raise PersonErased() from None
    return [decode_value(plaintext) for plaintext in plaintexts]


def _value_field() -> SealedField:
    field = ProfileValue._meta.get_field("value")
    assert isinstance(field, SealedField)
    return field


def profile_read(*, subject_id: uuid.UUID, fields: Iterable[str], purpose: str, actor: Actor) -> dict[str, FieldValue]:
    """The person's values of `fields` that are set, with provenance, for `purpose`.

    Raises before decrypting anything if the purpose may not use one of the fields, lacks the
    person's consent or is stopped by a restriction. On PostgreSQL five queries: the plan with
    the values, the consent check, the data key and the audit entry's two (one more elsewhere,
    for the values). This is the path of every request that reads a person, so it builds no
    model instances."""
    subject_id = crypto.as_subject_id(subject_id)
    target, keys, rows = _read_plan(subject_id, fields, purpose, with_values=True)
    check_access(subject_id=subject_id, purpose=target)
    if rows is None:
        rows = _person_values(subject_id, list(keys))
    values = _decrypt(subject_id, [(row[2], row[1]) for row in rows], _value_field())
    audit_record(
        **actor.audit(), action="profile.read", purpose=target.slug, fields=list(keys.values()), subject_id=subject_id
    )
    released = {keys[row[0]]: FieldValue(value, *row[3:]) for row, value in zip(rows, values, strict=True)}
    return {key: released[key] for key in keys.values() if key in released}


_PROVENANCE = ("definition_id", "id", "value", "source", "source_name", "legal_basis", "collected_at", "expires_at")


def _person_values(subject_id: uuid.UUID, definition_ids: list[uuid.UUID]) -> list[tuple[Any, ...]]:
    """One person's rows of these fields, ciphertext as bytes (where `_read_plan` did not bring
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
    field = ProfileValueHistory._meta.get_field("value")
    assert isinstance(field, SealedField)
    values = _decrypt_rows(subject_id, rows, field) if rows else []
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
    thousands). Rows are handled as tuples of bytes: at 100,000 values, building objects per
    value would cost more than decrypting them."""
    if purpose == RIGHTS_PURPOSE:
        raise ValueError("Rights requests are one person at a time: use profile_read.")
    return _read_many_any_purpose(subject_ids, fields, purpose, actor)


def _read_many_any_purpose(
    subject_ids: Iterable[uuid.UUID], fields: Iterable[str], purpose: str, actor: Actor
) -> dict[uuid.UUID, dict[str, Any]]:
    """`profile_read_many` without its refusal of the rights purpose (for `profile_ages` only)."""
    wanted = list(dict.fromkeys(crypto.as_subject_id(s) for s in subject_ids))
    target, keys, _ = _read_plan(None, fields, purpose)
    allowed = consent_granted_subjects(subject_ids=wanted, purpose=target.slug)
    if allowed and target.legal_basis not in _UNRESTRICTABLE:
        # Restrictions are rare: all of them in one small query, rather than 10,000 ids sent.
        allowed -= set(Restriction.objects.values_list("subject_id", flat=True))
    names = list(keys.values())
    found = crypto.decrypt_many(
        allowed,
        _value_rows(allowed, list(keys)) if allowed else [],
        data_class=PROFILE,
        context_prefix=_value_field()._context_prefix,
    )
    for subject in found.failed:
        # One damaged row or missing key must not stop a segment: that person is left out, and
        # the operators are told (ids only).
        logger.error("Bulk read: the values of subject %s did not decrypt; left out", subject)
    # Only the people whose values were decrypted are audited (and returned): an erased person,
    # or one holding none of the fields, was not read.
    plaintexts = found.plaintexts
    read = [s for s in wanted if s in plaintexts]
    audit_record_many(**actor.audit(), action="profile.read", purpose=target.slug, fields=names, subject_ids=read)
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


def profile_records_read(
    *,
    subject_id: uuid.UUID,
    purpose: str,
    actor: Actor,
    shape: str,
    kinds: Iterable[str] | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[Record]:
    """The person's documents or events (`shape`) of the kinds `purpose` may use, newest first;
    `offset`/`limit` page through them (only the page is decrypted).

    For a marketing purpose only kinds collected for that purpose are released; the person's own
    rights release all of them."""
    subject_id = crypto.as_subject_id(subject_id)
    target = _purpose(purpose)
    check_access(subject_id=subject_id, purpose=target)
    model, rows = _records(subject_id, target, shape, kinds)
    fetched: list[Any] = list(rows[offset : offset + limit] if limit else rows[offset:])
    name = "payload" if model is ProfileEvent else "body"
    sealed_field = model._meta.get_field(name)
    assert isinstance(sealed_field, SealedField)
    bodies = _decrypt_rows(subject_id, fetched, sealed_field) if fetched else []
    audit_record(
        **actor.audit(),
        action=f"profile.{shape}s_read",
        purpose=target.slug,
        fields=sorted({f"{shape}.{row.kind.slug}" for row in fetched}),
        subject_id=subject_id,
    )
    return [
        Record(
            row.pk,
            row.kind.slug,
            body,
            row.source,
            row.source_name,
            getattr(row, "occurred_at", row.collected_at),
            row.expires_at,
        )
        for row, body in zip(fetched, bodies, strict=True)
    ]


def profile_records_count(
    *, subject_id: uuid.UUID, purpose: str, shape: str, kinds: Iterable[str] | None = None
) -> int:
    """How many documents or events `profile_records_read` would page through (nothing decrypted)."""
    target = _purpose(purpose)
    check_access(subject_id=crypto.as_subject_id(subject_id), purpose=target)
    return _records(subject_id, target, shape, kinds)[1].count()


def _records(subject_id: uuid.UUID, purpose: Purpose, shape: str, kinds: Iterable[str] | None) -> tuple[Any, Any]:
    model: Any = ProfileEvent if shape == RecordKind.Shape.EVENT else ProfileDocument
    rows = model.objects.filter(subject_id=subject_id).select_related("kind")
    if purpose.slug != RIGHTS_PURPOSE:
        rows = rows.filter(kind__purpose=purpose)
    if kinds is not None:
        rows = rows.filter(kind__slug__in=list(kinds))
    return model, rows.order_by("-occurred_at" if model is ProfileEvent else "-collected_at", "id")


def profile_find(*, field: str, value: Any, purpose: str, actor: Actor) -> list[uuid.UUID]:
    """The people whose `field` equals `value`: blind-index candidates confirmed by decryption,
    among those the purpose may process. One audit entry per candidate decrypted."""
    (definition,) = definitions_for([field])
    if not definition.searchable:
        raise FieldNotSearchable()
    target = _purpose(purpose)
    _check_fields([definition], target)
    index = value_index(definition, value)
    candidates = list(
        ProfileValue.objects.filter(definition=definition, blind_index=index).values_list("subject_id", flat=True)
    )
    found = profile_read_many(subject_ids=candidates, fields=[field], purpose=purpose, actor=actor)
    normalize = blind_index.NORMALIZERS[INDEX_KINDS.get(FieldType(definition.field_type), "text")]
    wanted = normalize(value)
    return [subject for subject, values in found.items() if field in values and normalize(values[field]) == wanted]


def profile_field_reindex(*, key: str, batch_size: int = 2000) -> int:
    """Recompute a field's blind indexes after its searchability or index size changed: each
    value is decrypted (here, in the gate), indexed anew or cleared, batch by batch. Audited
    once per batch as system work; returns how many values were updated."""
    definition = FieldDefinition.objects.get(key=key)
    field = _value_field()
    updated, last = 0, None
    while True:
        query = ProfileValue.objects.filter(definition=definition).order_by("id")
        batch = list((query.filter(id__gt=last) if last else query)[:batch_size])
        if not batch:
            return updated
        last = batch[-1].pk
        subjects: dict[uuid.UUID, list[ProfileValue]] = {}
        for row in batch:
            subjects.setdefault(row.subject_id, []).append(row)
        with transaction.atomic(), crypto.key_scope():
            changed, read = [], []
            for subject, rows in subjects.items():
                try:
                    values = _decrypt_rows(subject, rows, field)
                except PersonErased:
                    continue
                read.append(subject)
                for row, value in zip(rows, values, strict=True):
                    try:
                        index = value_index(definition, value) if definition.searchable else ""
                    except InvalidValue:  # stored before the field's rules changed: no index
                        index = ""
                    if index != row.blind_index:
                        row.blind_index = index
                        changed.append(row)
            ProfileValue.objects.bulk_update(changed, ["blind_index"])
            audit_record_many(
                actor_type=AuditActorType.SYSTEM,
                actor_id="reindex",
                action="profile.reindex",
                purpose=ACCOUNT_PURPOSE,
                fields=[definition.key],
                subject_ids=read,  # every person decrypted, changed or not
            )
            updated += len(changed)


# --- Moving a person's data: merge and undo re-encrypt under the other person's key ----------
def reseal(
    rows: Sequence[ProfileValue | ProfileValueHistory | ProfileDocument | ProfileEvent],
    *,
    to_subject: uuid.UUID,
    actor: Actor,
    reason: str,
) -> None:
    """Re-encrypt rows of one person under `to_subject`'s key and give them to that person.
    Used by identity resolution only; the caller saves the rows, in its transaction."""
    if not rows:
        return
    from_subject = rows[0].subject_id
    fields: list[str] = []
    for model in (ProfileValue, ProfileValueHistory, ProfileDocument, ProfileEvent):
        group = [row for row in rows if type(row) is model]
        if not group:
            continue
        name = {ProfileDocument: "body", ProfileEvent: "payload"}.get(model, "value")
        sealed_field = model._meta.get_field(name)
        assert isinstance(sealed_field, SealedField)
        plaintexts = _decrypt_rows(from_subject, group, sealed_field)
        for row, plaintext in zip(group, plaintexts, strict=True):
            row.subject_id = to_subject
            seal(row, name, plaintext)
        fields.append(model._meta.model_name or "")
    audit_record(
        **actor.audit(),
        action=f"profile.reseal.{reason}",
        purpose=ACCOUNT_PURPOSE,
        fields=fields,
        subject_id=from_subject,
    )


# --- Writes: checked like reads, validated per field, one transaction and one audit entry ------
def _fail(errors: dict[str, ProfileError]) -> None:
    """One error per bad field, each naming its field; nothing is written."""
    if errors:
        for param, error in errors.items():
            error.param = param
        raise InvalidInput(list(errors.values()))


def profile_write(
    *,
    subject_id: uuid.UUID,
    values: dict[str, Any],
    source: str,
    purpose: str,
    actor: Actor,
    source_name: str = "",
    collected_at: datetime | None = None,
) -> list[str]:
    """Set (or, with None, remove) the person's values; returns the keys written.

    Every value is checked first (type, choices, size, source, the field serves `purpose`, the
    person's consent), with one error per bad field; then all are written in one transaction.
    A rectified value's previous ciphertext moves, as it is, to the encrypted history."""
    subject_id = crypto.as_subject_id(subject_id)
    target = _purpose(purpose)
    if source not in Source.values:
        raise SourceNotAllowed()
    errors: dict[str, ProfileError] = {}
    known = {d.key: d for d in FieldDefinition.objects.filter(key__in=list(values)).prefetch_related("purposes")}
    cleaned: dict[str, tuple[FieldDefinition, Any]] = {}
    for key, raw in values.items():
        definition = known.get(key)
        try:
            if definition is None:
                raise UnknownField()
            if definition.is_deprecated:
                raise FieldDeprecated()
            if actor.type == AuditActorType.PERSON and not definition.person_can_edit:
                raise FieldNotEditable()
            if source not in definition.allowed_sources:
                raise SourceNotAllowed()
            _check_fields([definition], target)
            cleaned[key] = (definition, None if raw is None else value_clean(definition, raw))
        except ProfileError as error:
            errors[key] = error
    _fail(errors)
    check_access(subject_id=subject_id, purpose=target)
    now = timezone.now()
    collected_at = collected_at or now
    basis = LegalBasis.CONSENT if target.slug == RIGHTS_PURPOSE else target.legal_basis
    with transaction.atomic():
        current = {
            row.definition_id: row
            for row in ProfileValue.objects.select_for_update().filter(
                subject_id=subject_id, definition_id__in=[d.pk for d, _ in cleaned.values()]
            )
        }
        history, removed, added = [], [], []
        for definition, value in cleaned.values():
            old = current.get(definition.pk)
            if old is not None:
                removed.append(old.pk)
                if value is not None:  # a rectification keeps the earlier value; a removal does not
                    history.append(ProfileValueHistory.of(old, replaced_at=now))
            if value is None:
                continue
            row = ProfileValue(
                id=uuid.uuid4(),
                subject_id=subject_id,
                definition=definition,
                source=source,
                source_name=source_name,
                legal_basis=basis if old is None or target.slug != RIGHTS_PURPOSE else old.legal_basis,
                collected_at=collected_at,
                expires_at=collected_at + timedelta(days=definition.retention_days),
                blind_index=value_index(definition, value) if definition.searchable else "",
            )
            seal(row, "value", value)
            added.append(row)
        ProfileValueHistory.objects.bulk_create(history)
        ProfileValue.objects.filter(pk__in=removed).delete()
        ProfileValue.objects.bulk_create(added)
        audit_record(
            **actor.audit(), action="profile.write", purpose=target.slug, fields=list(cleaned), subject_id=subject_id
        )
    return list(cleaned)


def value_index(definition: FieldDefinition, value: Any) -> str:
    """The blind index of a searchable field's value (its key derives from the field's id, which
    never changes, so renaming a field's label or key keeps its index)."""
    kind = INDEX_KINDS.get(FieldType(definition.field_type), "text")
    try:
        return BlindIndex(f"profiles.field.{definition.pk}", kind, definition.index_bits).compute(value)
    except blind_index.InvalidValue:
        raise InvalidValue(param=definition.key) from None


def _kind(slug: str, shape: str) -> RecordKind:
    kind = RecordKind.objects.select_related("purpose").filter(slug=slug, shape=shape).first()
    if kind is None:
        raise UnknownKind()
    return kind


def profile_record_write(
    *,
    subject_id: uuid.UUID,
    kind: str,
    shape: str,
    body: Any,
    source: str,
    actor: Actor,
    source_name: str = "",
    occurred_at: datetime | None = None,
) -> uuid.UUID:
    """Store a document (replacing the one of the same kind and source) or append an event.

    Refused, and nothing stored, unless the person has granted the kind's purpose."""
    subject_id = crypto.as_subject_id(subject_id)
    record_kind = _kind(kind, shape)
    if source not in record_kind.allowed_sources:
        raise SourceNotAllowed()
    body = document_clean(body, param="payload" if shape == RecordKind.Shape.EVENT else "body")
    check_access(subject_id=subject_id, purpose=record_kind.purpose)
    now = timezone.now()
    provenance = {
        "subject_id": subject_id,
        "kind": record_kind,
        "source": source,
        "source_name": source_name,
        "legal_basis": record_kind.purpose.legal_basis,
        "collected_at": now,
        "expires_at": (occurred_at or now) + timedelta(days=record_kind.retention_days),
    }
    with transaction.atomic():
        if shape == RecordKind.Shape.EVENT:
            record: ProfileEvent | ProfileDocument = ProfileEvent(
                id=uuid.uuid4(), occurred_at=occurred_at or now, **provenance
            )
            seal(record, "payload", body)
        else:
            record = ProfileDocument(id=uuid.uuid4(), **provenance)
            seal(record, "body", body)
            same = ProfileDocument.objects.filter(subject_id=subject_id, kind=record_kind, source_name=source_name)
            same.delete()
        try:
            with transaction.atomic():
                record.save(force_insert=True)
        except IntegrityError:
            # A concurrent writer put the same document in first: the later one replaces it.
            same.delete()
            record.save(force_insert=True)
        audit_record(
            **actor.audit(),
            action=f"profile.{shape}_write",
            purpose=record_kind.purpose.slug,
            fields=[f"{shape}.{record_kind.slug}"],
            subject_id=subject_id,
        )
    return record.pk


def profile_age(*, subject_id: uuid.UUID) -> tuple[int | None, str]:
    """The person's age in years and country code, for the consent age gate; (None, "") when
    their profile holds no birth date.

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
    if "birth_date" not in held:
        return None, country
    return age_in_years(held["birth_date"].value), country


def profile_ages(*, subject_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, tuple[int | None, str]]:
    """`profile_age` for many people at once (a consent import), read for the same purpose and
    so with the same answers; people the profile says nothing about are left out."""
    today = timezone.localdate()
    try:
        # The rights purpose in bulk, which `profile_read_many` refuses: as `profile_age` reads
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


# --- Sealed social-login data (accounts/social.py seals it) -------------------------------------
@dataclass(frozen=True)
class SocialTokenValue:
    app_id: int | None
    access_token: str
    refresh_token: str
    expires_at: datetime | None


@dataclass(frozen=True)
class SocialAccountData:
    provider: str
    extra_data: dict[str, Any]
    tokens: list[SocialTokenValue]


def social_account_unseal(*, account_id: int, purpose: str, actor: Actor) -> SocialAccountData:
    """A linked social account's sealed provider answer and tokens: for account management (a
    token refresh, a call to the provider) or the person's own rights. One audit entry."""
    from allauth.socialaccount.models import SocialAccount

    from accounts.models import SealedSocialAccountData, SealedSocialToken

    if purpose not in (ACCOUNT_PURPOSE, RIGHTS_PURPOSE):
        raise FieldNotForPurpose(param="purpose")
    account = SocialAccount.objects.get(pk=account_id)
    subject_id = crypto.as_subject_id(account.user_id)
    check_access(subject_id=subject_id, purpose=_purpose(purpose))
    data = SealedSocialAccountData.objects.filter(account_id=account.pk, subject_id=subject_id).first()
    extra_field = SealedSocialAccountData._meta.get_field("extra_data")
    assert isinstance(extra_field, SealedField)
    extra = _decrypt_rows(subject_id, [data], extra_field)[0] if data and data.extra_data else {}
    rows = list(
        SealedSocialToken.objects.filter(subject_id=subject_id, token__account_id=account.pk).select_related("token")
    )
    plain: dict[str, dict[uuid.UUID, str]] = {}
    for name in ("access_token", "refresh_token"):
        sealed_field = SealedSocialToken._meta.get_field(name)
        assert isinstance(sealed_field, SealedField)
        present = [row for row in rows if getattr(row, name) is not None]
        values = _decrypt_rows(subject_id, present, sealed_field) if present else []
        plain[name] = {row.pk: value for row, value in zip(present, values, strict=True)}
    tokens = [
        SocialTokenValue(
            row.token.app_id,
            plain["access_token"].get(row.pk, ""),
            plain["refresh_token"].get(row.pk, ""),
            row.token.expires_at,
        )
        for row in rows
    ]
    audit_record(
        **actor.audit(),
        action="social.unseal",
        purpose=purpose,
        fields=["social.extra_data", *(["social.access_token", "social.refresh_token"] if rows else [])],
        subject_id=subject_id,
    )
    return SocialAccountData(account.provider, extra, tokens)


def social_pending_unseal(*, sealed: dict[str, str], name: str, field: str) -> Any:
    """Pending sign-in state (a social sign-up awaiting its form, a reauthentication, a TOTP
    secret being set up), as `accounts.social.social_pending_seal` sealed it under session key
    `name`: for finishing that step (account management). No person may exist yet, so the audit
    entry names none; it names the state as `field`."""
    import json

    from accounts.social import PENDING_CONTEXT
    from vault import keys

    plaintext = crypto.decrypt_standalone(sealed, context=keys.associated_data(PENDING_CONTEXT, name))
    audit_record(
        actor_type=AuditActorType.SYSTEM,
        actor_id="social-login",
        action="social.pending_unseal",
        purpose=ACCOUNT_PURPOSE,
        fields=[field],
    )
    return json.loads(plaintext)
