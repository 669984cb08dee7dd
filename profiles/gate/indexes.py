"""Blind indexes of searchable values: computing one when a value is written, and recomputing
a field's indexes when its searchability or index size changes (which needs every value
decrypted, so it runs here, in the gate)."""

import uuid
from typing import Any

from django.db import transaction

from profiles.errors import InvalidValue, PersonErased
from profiles.gate.decrypt import decrypt_rows
from profiles.gate.planning import ACCOUNT_PURPOSE
from profiles.models import FieldDefinition, FieldType, ProfileValue
from profiles.types import INDEX_KINDS
from vault import blind_index, crypto
from vault.audit import audit_record_many
from vault.blind_index import BlindIndex
from vault.models import AuditActorType


def value_index(definition: FieldDefinition, value: Any) -> str:
    """The blind index of a searchable field's value (its key derives from the field's id, which
    never changes, so renaming a field's label or key keeps its index)."""
    kind = INDEX_KINDS.get(FieldType(definition.field_type), "text")
    try:
        return BlindIndex(f"profiles.field.{definition.pk}", kind, definition.index_bits).compute(value)
    except blind_index.InvalidValue:
        raise InvalidValue(param=definition.key) from None


def profile_field_reindex(*, key: str, batch_size: int = 2000) -> int:
    """Recompute a field's blind indexes after its searchability or index size changed: each
    value is decrypted (here, in the gate), indexed anew or cleared, batch by batch. Audited
    once per batch as system work; returns how many values were updated."""
    definition = FieldDefinition.objects.get(key=key)
    field = ProfileValue.sealed_field()
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
                    values = decrypt_rows(subject, rows, field)
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
