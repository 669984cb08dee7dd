"""The profile schema: staff define, change and deprecate fields at run time. Each change is
checked, saved as a new version with a snapshot, and audited; a shorter retention applies to
the stored values at once, and a changed index setting has the indexes recomputed."""

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Least
from django.forms.models import model_to_dict
from django.utils import timezone

from consent.models import Purpose
from profiles.errors import InvalidDefinition, UnknownField
from profiles.gate import Actor
from profiles.models import (
    FieldDefinition,
    FieldDefinitionVersion,
    FieldType,
    ProfileValue,
    ProfileValueHistory,
    Source,
)
from vault.audit import audit_record

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
DEFINITION_ATTRS = (
    "label",
    "help_text",
    "field_type",
    "choices",
    "category",
    "is_special_category",
    "searchable",
    "index_bits",
    "retention_days",
    "allowed_sources",
    "max_length",
    "person_can_view",
    "person_can_edit",
)
_FIXED = ("field_type",)  # stored values are typed: a field's type never changes
_NOT_SEARCHABLE = {FieldType.JSON, FieldType.MULTI_CHOICE, FieldType.DECIMAL}


def definition_check(definition: FieldDefinition) -> None:
    """Raise `InvalidDefinition` naming the attribute that is wrong."""
    if not _KEY.match(definition.key or ""):
        raise InvalidDefinition("Lower-case letters, digits and _, starting with a letter.", param="key")
    if not (definition.label or "").strip():
        raise InvalidDefinition("A label is required.", param="label")
    if definition.field_type not in FieldType.values:
        raise InvalidDefinition("Not a known field type.", param="field_type")
    choices = definition.choices
    if definition.field_type in (FieldType.CHOICE, FieldType.MULTI_CHOICE):
        if not isinstance(choices, list) or not choices or not all(isinstance(c, str) and c for c in choices):
            raise InvalidDefinition("A choice field lists its choices (non-empty text).", param="choices")
        if len(set(choices)) != len(choices):
            raise InvalidDefinition("A choice is listed twice.", param="choices")
    elif choices:
        raise InvalidDefinition("Only choice fields have choices.", param="choices")
    sources = definition.allowed_sources
    if not isinstance(sources, list) or not sources or any(s not in Source.values for s in sources):
        raise InvalidDefinition(f"A list of sources among: {', '.join(Source.values)}.", param="allowed_sources")
    if definition.searchable and (definition.is_special_category or definition.field_type in _NOT_SEARCHABLE):
        raise InvalidDefinition(
            "Special-category, JSON, multi-choice and decimal fields cannot be searchable.", param="searchable"
        )
    if not 8 <= definition.index_bits <= 256:
        raise InvalidDefinition("Between 8 and 256 bits.", param="index_bits")
    if not definition.retention_days or definition.retention_days < 1:
        raise InvalidDefinition("Every field has a retention period of at least one day.", param="retention_days")


def _purposes(slugs: Iterable[str]) -> list[Purpose]:
    wanted = list(dict.fromkeys(slugs))
    found = list(Purpose.objects.filter(slug__in=wanted))
    if len(found) != len(wanted):
        raise InvalidDefinition("Unknown purpose.", param="purposes")
    return found


def _saved(definition: FieldDefinition, purposes: list[Purpose] | None, actor: Actor, action: str) -> FieldDefinition:
    """Save, version and audit one change of a definition (the caller holds a transaction)."""
    definition_check(definition)
    definition.save()
    if purposes is not None:
        definition.purposes.set(purposes)
    snapshot = model_to_dict(definition, fields=("key", *DEFINITION_ATTRS))
    snapshot["purposes"] = sorted(definition.purposes.values_list("slug", flat=True))
    snapshot["deprecated_at"] = definition.deprecated_at.isoformat() if definition.deprecated_at else None
    FieldDefinitionVersion.objects.create(
        definition=definition, version=definition.version, snapshot=snapshot, changed_by=actor.id
    )
    audit_record(**actor.audit(), action=action, fields=[definition.key])
    return definition


def field_definition_create(*, key: str, actor: Actor, purposes: Iterable[str] = (), **attrs: Any) -> FieldDefinition:
    """Define a new profile field (version 1)."""
    unknown = set(attrs) - set(DEFINITION_ATTRS)
    if unknown:
        raise InvalidDefinition("Not an attribute of a field definition.", param=sorted(unknown)[0])
    with transaction.atomic():
        if FieldDefinition.objects.filter(key=key).exists():
            raise InvalidDefinition("A field with this key exists.", param="key")
        definition = FieldDefinition(key=key, **attrs)
        return _saved(definition, _purposes(purposes), actor, "schema.field_create")


def field_definition_update(
    *, key: str, actor: Actor, purposes: Iterable[str] | None = None, **changes: Any
) -> FieldDefinition:
    """Change a field's definition; each change is a new version. The key and type are fixed."""
    unknown = set(changes) - set(DEFINITION_ATTRS)
    if unknown:
        raise InvalidDefinition("Not an attribute of a field definition.", param=sorted(unknown)[0])
    with transaction.atomic():
        definition = _definition_for_update(key)
        index_before = (definition.searchable, definition.index_bits)
        for name, value in changes.items():
            if name in _FIXED and value != getattr(definition, name):
                raise InvalidDefinition("A field's type cannot change: define a new field.", param=name)
            setattr(definition, name, value)
        definition.version += 1
        saved = _saved(definition, None if purposes is None else _purposes(purposes), actor, "schema.field_update")
        if "retention_days" in changes:
            _retention_shorten(definition)
        if (definition.searchable, definition.index_bits) != index_before:
            from profiles.tasks import field_reindex  # the stored indexes no longer match: recompute

            transaction.on_commit(lambda: field_reindex.delay(key))
        return saved


def _retention_shorten(definition: FieldDefinition) -> None:
    """A shorter retention applies to what is stored too: each value (and earlier value) of the
    field expires by its collection time plus the new period, if that is sooner. A longer one
    never extends what was promised."""
    period = timedelta(days=definition.retention_days)
    for model in (ProfileValue, ProfileValueHistory):
        model.objects.filter(definition=definition).update(expires_at=Least("expires_at", F("collected_at") + period))


def field_definition_deprecate(*, key: str, actor: Actor) -> FieldDefinition:
    """Remove a field from use: it takes no new values; stored ones live out their retention."""
    with transaction.atomic():
        definition = _definition_for_update(key)
        if definition.deprecated_at is None:
            definition.deprecated_at = timezone.now()
            definition.version += 1
            _saved(definition, None, actor, "schema.field_deprecate")
        return definition


def _definition_for_update(key: str) -> FieldDefinition:
    definition = FieldDefinition.objects.select_for_update().filter(key=key).first()
    if definition is None:
        raise UnknownField(param="key")
    return definition
