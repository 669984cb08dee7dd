"""Moving a person's data to another person: identity resolution (a merge, and its undo)
re-encrypts the rows under the other person's key. Decrypting is the gate's, so the move is
done here, audited once; the merge services choose the rows and save them."""

import uuid
from collections.abc import Sequence

from profiles.gate.actors import Actor
from profiles.gate.decrypt import decrypt_rows
from profiles.gate.planning import ACCOUNT_PURPOSE
from profiles.models import ProfileDocument, ProfileEvent, ProfileValue, ProfileValueHistory
from vault.audit import audit_record
from vault.fields import seal


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
        plaintexts = decrypt_rows(from_subject, group, model.sealed_field())
        for row, plaintext in zip(group, plaintexts, strict=True):
            row.subject_id = to_subject
            seal(row, model.sealed_field_name, plaintext)
        fields.append(model._meta.model_name or "")
    audit_record(
        **actor.audit(),
        action=f"profile.reseal.{reason}",
        purpose=ACCOUNT_PURPOSE,
        fields=fields,
        subject_id=from_subject,
    )
