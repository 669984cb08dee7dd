"""Writing profile values: checked like reads (purpose, consent, restriction) and validated per
field, with one error per bad field; then one transaction and one audit entry. A rectified
value's ciphertext moves, undecrypted, to the history."""

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from consent.models import LegalBasis, Purpose
from profiles.errors import FieldDeprecated, FieldNotEditable, ProfileError, SourceNotAllowed, UnknownField
from profiles.gate.actors import Actor
from profiles.gate.indexes import value_index
from profiles.gate.planning import RIGHTS_PURPOSE, check_access, check_fields, purpose_for
from profiles.models import FieldDefinition, ProfileValue, ProfileValueHistory, Source
from profiles.types import value_clean
from vault import crypto
from vault.audit import audit_record
from vault.errors import InvalidInput
from vault.fields import seal
from vault.models import AuditActorType
from vault.outbox import outbox_emit

# The outbox topic announcing which fields of someone's profile changed (keys only, never values).
PROFILE_UPDATED_TOPIC = "profile.updated"


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
    target = purpose_for(purpose)
    cleaned = _cleaned(values, source, target, actor)
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
        outbox_emit(topic=PROFILE_UPDATED_TOPIC, payload={"subject_id": subject_id, "fields": list(cleaned)})
    return list(cleaned)


def _cleaned(
    values: dict[str, Any], source: str, target: Purpose, actor: Actor
) -> dict[str, tuple[FieldDefinition, Any]]:
    """Each value checked (type, choices, size, source, the field serves `target`), one error per
    bad field. A rectification staff make for the person (the rights purpose) may set any field."""
    if source not in Source.values:
        raise SourceNotAllowed()
    errors: dict[str, ProfileError] = {}
    known = {d.key: d for d in FieldDefinition.objects.filter(key__in=list(values)).prefetch_related("purposes")}
    cleaned: dict[str, tuple[FieldDefinition, Any]] = {}
    rectification = target.slug == RIGHTS_PURPOSE and source == Source.STAFF
    for key, raw in values.items():
        definition = known.get(key)
        try:
            if definition is None:
                raise UnknownField()
            if definition.is_deprecated:
                raise FieldDeprecated()
            if actor.type == AuditActorType.PERSON and not definition.person_can_edit:
                raise FieldNotEditable()
            if source not in definition.allowed_sources and not rectification:
                raise SourceNotAllowed()
            check_fields([definition], target)
            cleaned[key] = (definition, None if raw is None else value_clean(definition, raw))
        except ProfileError as error:
            errors[key] = error
    _fail(errors)
    return cleaned


def profile_values_check(*, values: dict[str, Any], source: str, purpose: str, actor: Actor) -> None:
    """Check values as `profile_write` would, writing nothing: a rectification request is
    refused at once when its values could not be written later."""
    if not values:
        raise UnknownField("Name at least one field.", param="values")
    _cleaned(values, source, purpose_for(purpose), actor)
