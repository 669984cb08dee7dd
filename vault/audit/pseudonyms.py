"""Audit pseudonyms: the random id by which entries name a person (DESIGN.md 2, "Audit
pseudonyms"). The link from person to pseudonym is the only row that ties the log to anyone, so
erasure deletes it and the chain stays verifiable while saying nothing about whom it was about."""

import json
import uuid

from django.db import connections, router
from django.utils import timezone

from vault.crypto import SubjectErased
from vault.models import AuditPseudonym, ErasedSubject
from vault.postgres import pg_array


def audit_pseudonym_for(subject_id: uuid.UUID) -> uuid.UUID:
    """The subject's audit pseudonym, made on first use. Never made again once the subject is
    erased: that would tie new entries to a person who asked to be forgotten."""
    existing = AuditPseudonym.objects.filter(subject_id=subject_id).values_list("pseudonym", flat=True).first()
    if existing is not None:
        return existing
    if ErasedSubject.objects.filter(subject_id=subject_id).exists():
        raise SubjectErased(f"Subject {subject_id} was erased; no audit pseudonym is made for them.")
    link, _ = AuditPseudonym.objects.get_or_create(subject_id=subject_id)
    return link.pseudonym


def _hex_pairs(text: str | None) -> dict[str, str]:
    """{subject: pseudonym} from "<subject hex><pseudonym hex>,...", the form in which
    `pseudonyms_many` has PostgreSQL answer."""
    return {pair[:32]: pair[32:] for pair in text.split(",")} if text else {}


def pseudonyms_many(subjects: list[str]) -> dict[str, str]:
    """The audit pseudonyms of `subjects` (distinct UUIDs, as hex), by subject, as hex, made for
    those who have none yet: one query to read them, one more to make any missing, however many
    subjects there are. Never made for an erased subject: that raises `SubjectErased`, as
    `audit_pseudonym_for` does. `audit_record_many` calls it with the head locked, as the head
    lock's own lookup of one pseudonym runs, so appends that make pseudonyms never wait on each
    other's uncommitted ones holding the head."""
    connection = connections[router.db_for_write(AuditPseudonym)]
    quote = connection.ops.quote_name
    links, erased = quote(AuditPseudonym._meta.db_table), quote(ErasedSubject._meta.db_table)
    subject, pseudonym, created_at = quote("subject_id"), quote("pseudonym"), quote("created_at")
    now = AuditPseudonym._meta.get_field("created_at").get_db_prep_save(timezone.now(), connection)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Answers come as one text of hex pairs, not a row per subject: making 20,000 UUID
            # objects took longer than the query.
            pairs = f"string_agg(encode(uuid_send({subject}), 'hex') || encode(uuid_send({pseudonym}), 'hex'), ',')"

            def read(hexes: list[str]) -> dict[str, str]:
                cursor.execute(
                    f"SELECT {pairs} FROM {links} WHERE {subject} = ANY(%s::uuid[])",  # noqa: S608
                    [pg_array(hexes)],
                )
                return _hex_pairs(cursor.fetchone()[0])

            found = read(subjects)
            missing = [s for s in subjects if s not in found]
            if missing:
                # ON CONFLICT DO NOTHING: one made meanwhile outside the head lock (by
                # audit_pseudonym_for) is kept, and read again after this statement.
                cursor.execute(
                    f"WITH made AS (INSERT INTO {links} ({pseudonym}, {subject}, {created_at}) "  # noqa: S608
                    f"SELECT gen_random_uuid(), w.{subject}, %s FROM unnest(%s::uuid[]) AS w({subject}) "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {erased} e WHERE e.{subject} = w.{subject}) "
                    f"ON CONFLICT ({subject}) DO NOTHING RETURNING {subject}, {pseudonym}) "
                    f"SELECT {pairs} FROM made",
                    [now, pg_array(missing)],
                )
                found |= _hex_pairs(cursor.fetchone()[0])
                if any(s not in found for s in missing):
                    found |= read(missing)
        else:
            # SQLite: the head lock is the database's write lock, so no one makes one meanwhile.
            # It stores UUIDs as hex. The ids go as one JSON array: a parameter each would hit
            # SQLite's limit on parameters.
            cursor.execute(
                f"SELECT w.value, l.{pseudonym}, EXISTS (SELECT 1 FROM {erased} e WHERE e.{subject} = w.value) "  # noqa: S608
                f"FROM json_each(%s) w LEFT JOIN {links} l ON l.{subject} = w.value",
                [json.dumps(subjects)],
            )
            found, new = {}, []
            for subject_hex, pseudonym_hex, was_erased in cursor.fetchall():
                if pseudonym_hex is None and not was_erased:
                    pseudonym_hex = uuid.uuid4().hex
                    new.append((pseudonym_hex, subject_hex, now))
                if pseudonym_hex is not None:
                    found[subject_hex] = pseudonym_hex
            if new:
                cursor.executemany(
                    f"INSERT INTO {links} ({pseudonym}, {subject}, {created_at}) VALUES (%s, %s, %s)",  # noqa: S608
                    new,
                )
    missing = [s for s in subjects if s not in found]
    if missing:
        raise SubjectErased(
            f"{len(missing)} of these subjects were erased (the first is {uuid.UUID(missing[0])}); "
            "no audit pseudonym is made for them."
        )
    return found


def audit_pseudonym_unlink(subject_id: uuid.UUID) -> bool:
    """Forget which pseudonym was the subject's (at erasure). Their entries stay, anonymous."""
    deleted, _ = AuditPseudonym.objects.filter(subject_id=subject_id).delete()
    return deleted > 0
