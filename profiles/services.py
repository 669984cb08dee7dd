"""Writes of the profiles app other than values: the schema, restriction, merging and retention.

Values, documents and events are written through `profiles.gate`, which checks and audits them.
"""

import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.db.models import F
from django.db.models.functions import Least
from django.forms.models import model_to_dict
from django.utils import timezone

from consent.errors import UnknownPurpose
from consent.models import ConsentStatus, LegalBasis, Method, Purpose
from consent.selectors import consent_states
from consent.services import consent_withdraw
from profiles.errors import (
    FieldNotForPurpose,
    FieldNotSearchable,
    InvalidDefinition,
    InvalidValue,
    MergeError,
    UnknownField,
)
from profiles.gate import ACCOUNT_PURPOSE, Actor, profile_find, reseal
from profiles.models import (
    FieldDefinition,
    FieldDefinitionVersion,
    FieldType,
    Merge,
    ProfileDocument,
    ProfileEvent,
    ProfileValue,
    ProfileValueHistory,
    Restriction,
    Source,
)
from vault.audit import audit_record, audit_record_many
from vault.models import ErasedSubject

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


# --- The schema ----------------------------------------------------------------------------------
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


# --- Restriction of processing (GDPR Art. 18; the rights services call these) -----------------
def profile_restrict(*, subject_id: uuid.UUID, actor: Actor) -> bool:
    """Stop all processing of the person's data except their rights and legal obligations."""
    with transaction.atomic():
        _, created = Restriction.objects.get_or_create(subject_id=subject_id)
        if created:
            audit_record(**actor.audit(), action="profile.restrict", subject_id=subject_id)
    return created


def profile_restriction_lift(*, subject_id: uuid.UUID, actor: Actor) -> bool:
    with transaction.atomic():
        deleted, _ = Restriction.objects.filter(subject_id=subject_id).delete()
        if deleted:
            audit_record(**actor.audit(), action="profile.restriction_lift", subject_id=subject_id)
    return bool(deleted)


# --- Identity resolution -------------------------------------------------------------------------
_NO = {ConsentStatus.WITHDRAWN, ConsentStatus.REFUSED, ConsentStatus.EXPIRED}


def profile_merge(*, survivor_id: uuid.UUID, merged_id: uuid.UUID, actor: Actor, reason: str) -> Merge:
    """Merge `merged_id`'s profile into `survivor_id`'s, re-encrypting under the survivor's key.

    Where both have a value for a field, the survivor's stays current and the other goes to its
    history. Consent never widens: a purpose the merged person withdrew or refused is withdrawn
    for the survivor too. Reversible with `profile_merge_undo` until the grace period ends."""
    if survivor_id == merged_id:
        raise MergeError("A profile cannot be merged into itself.")
    if ErasedSubject.objects.filter(subject_id__in=[survivor_id, merged_id]).exists():
        raise MergeError("One of these people was erased.")
    with transaction.atomic():
        survivor_values = {
            row.definition_id: row for row in ProfileValue.objects.select_for_update().filter(subject_id=survivor_id)
        }
        merged_values = list(ProfileValue.objects.select_for_update().filter(subject_id=merged_id))
        moved: dict[str, list[str]] = defaultdict(list)
        to_history = [row for row in merged_values if row.definition_id in survivor_values]
        kept = [row for row in merged_values if row.definition_id not in survivor_values]
        now = timezone.now()
        history = [ProfileValueHistory.of(row, replaced_at=now) for row in to_history]
        old_history = list(ProfileValueHistory.objects.filter(subject_id=merged_id))
        documents = list(ProfileDocument.objects.filter(subject_id=merged_id))
        taken = set(ProfileDocument.objects.filter(subject_id=survivor_id).values_list("kind_id", "source_name"))
        clashing = [d for d in documents if (d.kind_id, d.source_name) in taken]
        documents = [d for d in documents if (d.kind_id, d.source_name) not in taken]
        events = list(ProfileEvent.objects.filter(subject_id=merged_id))
        rows: list[Any] = [*kept, *history, *old_history, *documents, *events]
        reseal(rows, to_subject=survivor_id, actor=actor, reason="merge")
        ProfileValue.objects.filter(pk__in=[row.pk for row in to_history]).delete()
        ProfileDocument.objects.filter(pk__in=[d.pk for d in clashing]).delete()
        ProfileValueHistory.objects.bulk_create(history)
        moving: list[tuple[Any, list[Any]]] = [
            (ProfileValue, kept),
            (ProfileValueHistory, old_history),
            (ProfileDocument, documents),
        ]
        for model, group in moving:
            model.objects.bulk_update(group, ["subject_id", _sealed_name(model)])
            moved[model._meta.model_name or ""] += [str(row.pk) for row in group]
        ProfileEvent.objects.bulk_update(events, ["subject_id", "payload"], batch_size=1000)
        moved["profileevent"] = [str(row.pk) for row in events]
        withdrawn = _narrow_consent(survivor_id, merged_id, actor)
        if Restriction.objects.filter(subject_id=merged_id).exists():
            profile_restrict(subject_id=survivor_id, actor=actor)  # a restriction does not lapse by merging
        merge = Merge.objects.create(
            survivor_id=survivor_id,
            merged_id=merged_id,
            reason=reason,
            moved=dict(moved),
            replaced=[str(row.pk) for row in history],
            undo_until=now + timedelta(days=settings.VAULT_MERGE_UNDO_DAYS),
        )
        for subject in (survivor_id, merged_id):
            audit_record(
                **actor.audit(),
                action="profile.merge",
                purpose="account-management",
                fields=withdrawn,
                subject_id=subject,
            )
    return merge


_SEALED_NAMES: dict[type[Any], str] = {ProfileDocument: "body", ProfileEvent: "payload"}


def _sealed_name(model: type[Any]) -> str:
    return _SEALED_NAMES.get(model, "value")


def _narrow_consent(survivor_id: uuid.UUID, merged_id: uuid.UUID, actor: Actor) -> list[str]:
    """Withdraw for the survivor every purpose the merged person said no to; returns their slugs."""
    refused = {state.purpose for state in consent_states(subject_id=merged_id) if state.state in _NO}
    withdrawn = []
    for state in consent_states(subject_id=survivor_id):
        if state.purpose in refused and state.is_granted and state.legal_basis != LegalBasis.CONTRACT:
            consent_withdraw(
                subject_id=survivor_id,
                purpose=state.purpose,
                method=Method.IMPORT,
                actor_type=actor.type if actor.subject_id is None else "system",
                actor_id=actor.id or "profile-merge",
            )
            withdrawn.append(f"consent.{state.purpose.replace('-', '_')}")
    return withdrawn


def _undo_would_clash(merge: Merge) -> bool:
    """Whether the merged person has, since the merge, got a value of a field (or a document of a
    kind and source) that the undo would give back to them: one person holds one of each."""
    fields = {
        *ProfileValue.objects.filter(pk__in=merge.moved.get("profilevalue", [])).values_list(
            "definition_id", flat=True
        ),
        *ProfileValueHistory.objects.filter(pk__in=merge.replaced).values_list("definition_id", flat=True),
    }
    if ProfileValue.objects.filter(subject_id=merge.merged_id, definition_id__in=fields).exists():
        return True
    documents = ProfileDocument.objects.filter(pk__in=merge.moved.get("profiledocument", []))
    held = set(ProfileDocument.objects.filter(subject_id=merge.merged_id).values_list("kind_id", "source_name"))
    return any(pair in held for pair in documents.values_list("kind_id", "source_name"))


def profile_merge_undo(*, merge_id: uuid.UUID, actor: Actor) -> Merge:
    """Give the merged person back what the merge moved (within the grace period). Consent
    withdrawn for the survivor stays withdrawn: only the person can grant it again."""
    with transaction.atomic():
        merge = Merge.objects.select_for_update().filter(pk=merge_id).first()
        if merge is None:
            raise MergeError("No such merge.", param="merge")
        if merge.undone_at is not None or merge.undo_until < timezone.now():
            raise MergeError("This merge can no longer be undone.", param="merge")
        if _undo_would_clash(merge):
            raise MergeError(
                "The merged person holds new values or documents where the undo would put theirs back.", param="merge"
            )
        replaced = set(merge.replaced)
        back_to_values: list[ProfileValue] = []
        rows: list[Any] = []
        models_moved: tuple[Any, ...] = (ProfileValue, ProfileValueHistory, ProfileDocument, ProfileEvent)
        for model in models_moved:
            ids = merge.moved.get(model._meta.model_name or "", [])
            if model is ProfileValueHistory:
                ids = [*ids, *replaced]
            found = list(model.objects.filter(pk__in=ids, subject_id=merge.survivor_id))
            gone = set(ids) - {str(row.pk) for row in found}
            # A row the retention run deleted is simply gone; one that moved on (rectified into
            # the survivor's history, merged again elsewhere) would be lost by an undo.
            if gone and any(other.objects.filter(pk__in=gone).exists() for other in models_moved):
                raise MergeError(
                    "Some of what this merge moved has changed since (rectified, or merged again): "
                    "undo the later change first, or move the values by hand.",
                    param="merge",
                )
            rows += found
        reseal(rows, to_subject=merge.merged_id, actor=actor, reason="merge_undo")
        for model in models_moved:
            group = [row for row in rows if type(row) is model and str(row.pk) not in replaced]
            model.objects.bulk_update(group, ["subject_id", _sealed_name(model)], batch_size=1000)
        for row in rows:
            if isinstance(row, ProfileValueHistory) and str(row.pk) in replaced:
                back_to_values.append(row.as_value())
        ProfileValueHistory.objects.filter(pk__in=[v.pk for v in back_to_values]).delete()
        ProfileValue.objects.bulk_create(back_to_values)
        merge.undone_at = timezone.now()
        merge.save(update_fields=["undone_at"])
        for subject in (merge.survivor_id, merge.merged_id):
            audit_record(**actor.audit(), action="profile.merge_undo", purpose="account-management", subject_id=subject)
    return merge


# --- Retention -----------------------------------------------------------------------------------
_RETAINED: tuple[tuple[type[Any], str], ...] = (
    (ProfileValue, "definition__key"),
    (ProfileValueHistory, "definition__key"),
    (ProfileDocument, "kind__slug"),
    (ProfileEvent, "kind__slug"),
)


@dataclass
class RetentionReport:
    """What a retention run deleted (or, dry, would delete): rows per model and field or kind."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(sum(by_name.values()) for by_name in self.counts.values())


def retention_run(
    *, now: datetime | None = None, dry_run: bool = False, batch_size: int | None = None
) -> RetentionReport:
    """Delete values, history, documents and events past their retention, in bounded batches
    (one short transaction each, audited per person), so a large backlog never holds long locks."""
    now = now or timezone.now()
    batch_size = batch_size or settings.VAULT_RETENTION_BATCH
    report = RetentionReport()
    for model, name_path in _RETAINED:
        label = model._meta.model_name or ""
        expired = model.objects.filter(expires_at__lte=now)
        if dry_run:
            grouped = expired.order_by().values(name_path).annotate(n=models.Count("pk"))
            report.counts[label] = dict(grouped.values_list(name_path, "n"))
            continue
        counts: dict[str, int] = defaultdict(int)
        while True:
            with transaction.atomic():
                # Rows another run has locked are skipped, so two runs never take the same batch.
                batch = list(
                    expired.select_for_update(skip_locked=True, of=("self",))
                    .order_by()
                    .values_list("pk", "subject_id", name_path)[:batch_size]
                )
                if not batch:
                    break
                model.objects.filter(pk__in=[pk for pk, _, _ in batch]).delete()
                per_subject: dict[uuid.UUID, set[str]] = defaultdict(set)
                for _, subject, name in batch:
                    per_subject[subject].add(f"{label}.{name}")
                    counts[name] += 1
                by_names: dict[tuple[str, ...], list[uuid.UUID]] = defaultdict(list)
                for subject, names in per_subject.items():
                    by_names[tuple(sorted(names))].append(subject)
                for purged, subjects in by_names.items():
                    audit_record_many(
                        actor_type="system",
                        actor_id="retention",
                        action="profile.retention_purge",
                        fields=list(purged),
                        subject_ids=subjects,
                    )
        report.counts[label] = dict(counts)
    return report


# --- Identity resolution: the automatic merge and the staff merge -------------------------------
VERIFIED_EMAIL = "verified_email"
STAFF_MERGE = "staff"
_RESOLVER = "identity-resolution"


def profile_merge_verified_email(*, subject_id: uuid.UUID, email: str) -> list[Merge]:
    """Merge into the account `subject_id` every profile-only person (one without an account,
    such as a partner's or an import's) whose profile `email` equals `email`, which the account
    has just verified: the caller vouches for that. Two accounts are never merged here, and a
    pair whose merge was undone is not merged again (someone decided they are two people).

    Candidates are found through the gate (blind index, confirmed by decryption) for account
    management, a contract purpose: restricted and erased people are left out."""
    actor = Actor.system(_RESOLVER)
    try:
        found = profile_find(field="email", value=email, purpose=ACCOUNT_PURPOSE, actor=actor)
    except (UnknownField, FieldNotForPurpose, FieldNotSearchable, UnknownPurpose, InvalidValue):
        return []  # the schema no longer has a searchable email for account management
    candidates = [subject for subject in found if subject != subject_id]
    if not candidates:
        return []
    accounts = set(get_user_model().objects.filter(pk__in=[subject_id, *candidates]).values_list("pk", flat=True))
    if subject_id not in accounts:
        return []
    undone = set(
        Merge.objects.filter(survivor_id=subject_id, merged_id__in=candidates, undone_at__isnull=False).values_list(
            "merged_id", flat=True
        )
    )
    return [
        profile_merge(survivor_id=subject_id, merged_id=merged, actor=actor, reason=VERIFIED_EMAIL)
        for merged in candidates
        if merged not in accounts and merged not in undone
    ]


def _subject_is_known(subject_id: uuid.UUID) -> bool:
    """Whether anything is held about `subject_id`: an account, profile data or consent."""
    if get_user_model().objects.filter(pk=subject_id).exists():
        return True
    for model in (ProfileValue, ProfileValueHistory, ProfileDocument, ProfileEvent):
        if model.objects.filter(subject_id=subject_id).exists():
            return True
    return any(state.changed_at is not None for state in consent_states(subject_id=subject_id))


def profile_merge_by_staff(*, survivor_id: uuid.UUID, merged_id: uuid.UUID, actor: Actor) -> Merge:
    """A staff member merges two profiles they judged to be one person's. Refused, naming the
    input at fault, for one id twice, an erased or unknown person, or an account merged into a
    profile that has none (the person would lose their data from their own login)."""
    if survivor_id == merged_id:
        raise MergeError("A profile cannot be merged into itself.", param="merged")
    erased = set(
        ErasedSubject.objects.filter(subject_id__in=[survivor_id, merged_id]).values_list("subject_id", flat=True)
    )
    for param, subject in (("survivor", survivor_id), ("merged", merged_id)):
        if subject in erased:
            raise MergeError("This person was erased.", param=param)
        if not _subject_is_known(subject):
            raise MergeError("Nothing is held about this person.", param=param)
    accounts = set(get_user_model().objects.filter(pk__in=[survivor_id, merged_id]).values_list("pk", flat=True))
    if merged_id in accounts and survivor_id not in accounts:
        raise MergeError("Merge the profile without an account into the one with an account.", param="survivor")
    return profile_merge(survivor_id=survivor_id, merged_id=merged_id, actor=actor, reason=STAFF_MERGE)


# --- A source's data leaves with the source -----------------------------------------------------
def profile_source_purge(*, subject_id: uuid.UUID, source: str, source_name: str, actor: Actor) -> int:
    """Delete what one source (a social provider) put in the person's profile: current and
    earlier values, and documents (DESIGN.md invariant 6: a disconnected provider's data goes).
    Returns how many rows were deleted; audited with the field and kind names."""
    deleted, names = 0, set()
    purged: tuple[tuple[Any, str], ...] = (
        (ProfileValue, "definition__key"),
        (ProfileValueHistory, "definition__key"),
        (ProfileDocument, "kind__slug"),
    )
    with transaction.atomic():
        for model, name_path in purged:
            rows = model.objects.filter(subject_id=subject_id, source=source, source_name=source_name)
            names |= {f"{model._meta.model_name}.{name}" for name in rows.values_list(name_path, flat=True)}
            deleted += rows.delete()[0]
        if deleted:
            audit_record(**actor.audit(), action="profile.source_purge", fields=sorted(names), subject_id=subject_id)
    return deleted
