"""Identity resolution: merging one person's profile into another's (re-encrypted under the
survivor's key, consent never widened), undoing a merge within its grace period, and the two
ways a merge starts: an account's verified e-mail address, or a staff member's judgement."""

import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from consent.errors import UnknownPurpose
from consent.models import ConsentStatus, LegalBasis, Method
from consent.selectors import consent_states
from consent.services import consent_withdraw
from profiles.errors import FieldNotForPurpose, FieldNotSearchable, InvalidValue, MergeError, UnknownField
from profiles.gate import ACCOUNT_PURPOSE, Actor, profile_find, reseal
from profiles.models import Merge, ProfileDocument, ProfileEvent, ProfileValue, ProfileValueHistory, Restriction
from profiles.services.restriction import profile_restrict
from vault.audit import audit_record
from vault.models import ErasedSubject

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
            model.objects.bulk_update(group, ["subject_id", model.sealed_field_name])
            moved[model._meta.model_name or ""] += [str(row.pk) for row in group]
        ProfileEvent.objects.bulk_update(events, ["subject_id", ProfileEvent.sealed_field_name], batch_size=1000)
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
            model.objects.bulk_update(group, ["subject_id", model.sealed_field_name], batch_size=1000)
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


# --- How a merge starts: an account's verified e-mail address, or a staff member -------------
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
