"""What a request may touch, decided before anything is decrypted: the purpose and its legal
basis, the person's consent and any restriction of processing, and whether each field asked
serves the purpose. The read path's one schema query (the read plan) lives here too, because it
answers those questions and brings the ciphertext along."""

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection

from consent.errors import UnknownPurpose
from consent.models import LegalBasis, Purpose
from consent.selectors import consent_is_granted
from profiles.errors import ConsentRequired, FieldNotForPurpose, ProcessingRestricted, UnknownField
from profiles.models import FieldDefinition, ProfileValue, Restriction

RIGHTS_PURPOSE = "data-subject-rights"
ACCOUNT_PURPOSE = "account-management"  # identity resolution (merging profiles) serves it
# Bases that a restriction of processing does not stop (GDPR Art. 18(2): legal claims, rights).
UNRESTRICTABLE = {LegalBasis.LEGAL_OBLIGATION}


def purpose_for(slug: str) -> Purpose:
    """The purpose `slug` names; an unknown one is the gate's typed error."""
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


def read_plan(
    subject_id: uuid.UUID | None,
    keys: Iterable[str],
    slug: str,
    *,
    with_values: bool = False,
    permitted_only: bool = False,
) -> tuple[Purpose, dict[uuid.UUID, str], list[tuple[Any, ...]] | None]:
    """The purpose (with `restricted` set for this person), {definition id: key} of `keys` in the
    order asked, once each is known to serve the purpose, and, `with_values` on PostgreSQL, the
    person's rows of them as `reads._person_values` gives them (else None). Raises the gate's typed
    errors. `permitted_only` leaves out the fields that do not serve the purpose instead of
    refusing them (a caller asking "whatever of these this purpose allows"); it still refuses
    when none is left."""
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
    if permitted_only and slug != RIGHTS_PURPOSE:
        wanted = [key for key in wanted if found[key][1]]
        if not wanted:
            raise FieldNotForPurpose(param="fields")
    for key in wanted:
        if slug != RIGHTS_PURPOSE and not found[key][1]:
            raise FieldNotForPurpose(param=key)
    plan = {found[key][0]: key for key in wanted}
    values = None
    if joined:
        # Only the rows of the fields kept (ciphertext of a field left out is never decrypted).
        values = [(row[3], row[6], bytes(row[7]), *row[8:]) for row in rows if row[6] is not None and row[3] in plan]
    return purpose, plan, values


def definitions_for(keys: Iterable[str]) -> list[FieldDefinition]:
    """The definitions of `keys`, in the order asked, with the purposes each serves."""
    wanted = list(dict.fromkeys(keys))
    found = {d.key: d for d in FieldDefinition.objects.filter(key__in=wanted).prefetch_related("purposes")}
    for key in wanted:
        if key not in found:
            raise UnknownField(param=key)
    return [found[key] for key in wanted]


def check_fields(definitions: Sequence[FieldDefinition], purpose: Purpose) -> None:
    if purpose.slug == RIGHTS_PURPOSE:
        return
    for definition in definitions:
        if purpose.pk not in {p.pk for p in definition.purposes.all()}:
            raise FieldNotForPurpose(param=definition.key)


def _is_restricted(subject_id: uuid.UUID, purpose: Purpose) -> bool:
    if purpose.slug == RIGHTS_PURPOSE or purpose.legal_basis in UNRESTRICTABLE:
        return False
    restricted = getattr(purpose, "restricted", None)  # looked up with the purpose, when it was
    return Restriction.objects.filter(subject_id=subject_id).exists() if restricted is None else restricted


def check_access(*, subject_id: uuid.UUID, purpose: Purpose) -> None:
    """Refuse unless `purpose` may process the person's data now (basis, consent, restriction)."""
    if purpose.slug != RIGHTS_PURPOSE and not consent_is_granted(subject_id=subject_id, purpose=purpose.slug):
        raise ConsentRequired()
    if _is_restricted(subject_id, purpose):
        raise ProcessingRestricted()
