"""Sealed rows that the rights app keeps about a person (what a request carries, the export
bundle it produced): rights reads its rows and passes them in; the gate decrypts them for the
person's rights only and writes the audit entry, as it does for profile data."""

import uuid
from collections.abc import Sequence
from typing import Any

from profiles.gate.actors import Actor
from profiles.gate.decrypt import decrypt_rows
from profiles.gate.planning import RIGHTS_PURPOSE
from vault import crypto
from vault.audit import audit_record
from vault.fields import SealedField


def rights_rows_unseal(*, subject_id: uuid.UUID, rows: Sequence[Any], field: str, actor: Actor) -> list[Any]:
    """`field` of `rows`, all the person `subject_id`'s, decrypted for their rights (a request's
    details, an export bundle). A restriction of processing never stops this: it serves the
    rights themselves (GDPR Art. 18(2)). One audit entry naming the model and field."""
    if not rows:
        return []
    subject_id = crypto.as_subject_id(subject_id)
    if any(row.subject_id != subject_id for row in rows):
        raise ValueError("Sealed rights data of another person.")
    sealed = type(rows[0])._meta.get_field(field)
    assert isinstance(sealed, SealedField)
    values = decrypt_rows(subject_id, rows, sealed)
    audit_record(
        **actor.audit(),
        action="rights.unseal",
        purpose=RIGHTS_PURPOSE,
        fields=[f"{type(rows[0])._meta.label_lower}.{field}"],
        subject_id=subject_id,
    )
    return values
