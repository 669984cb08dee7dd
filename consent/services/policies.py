"""Purposes' policy texts: drafts, publishing a new version, and which version a choice names. A
grant is only worth what the text the person saw says, so versions are published forward in time
only, a grant names the one in force, and every publication is audited (who, which purpose)."""

import uuid
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from consent.errors import (
    InvalidPolicyVersion,
    NoCurrentPolicy,
    PolicyNotCurrent,
    UnknownPolicyVersion,
    UnknownPurpose,
)
from consent.models import PolicyDraft, PolicyVersion, Purpose
from vault.audit import audit_record
from vault.models import AuditActorType

# A version may be dated a little before the call (a form filled in a minute ago), never more:
# backdating would make grants given meanwhile look given against a superseded text.
PUBLISH_GRACE = timedelta(minutes=5)
# Who publishes when no one is named: a migration, the demo, a script.
PUBLISHER = "consent.policies"


def purpose_named(slug: str) -> Purpose:
    """The purpose with this slug; raises `UnknownPurpose`."""
    purpose = Purpose.objects.filter(slug=slug).first() if isinstance(slug, str) else None
    if purpose is None:
        raise UnknownPurpose()
    return purpose


def version_chosen(purpose: Purpose, label: str | None, *, now: datetime, current_only: bool) -> PolicyVersion:
    """The version a choice names: the one in force unless `label` says otherwise. A grant must
    name the version in force; a withdrawal or refusal may name any published one, so a person
    looking at a stale page can still say no."""
    in_force = purpose.versions.filter(effective_from__lte=now).order_by("-effective_from").first()
    if in_force is None:
        raise NoCurrentPolicy()
    if label is None or label == in_force.label:
        return in_force
    version = purpose.versions.filter(label=label).first()
    if version is None:
        raise UnknownPolicyVersion()
    if version.effective_from > now:
        raise PolicyNotCurrent("This policy version is not published yet.")
    if current_only:
        raise PolicyNotCurrent("This policy version was superseded; consent is given to the one in force.")
    return version


def policy_version_check(*, purpose: str, label: str, text: str, effective_from: datetime | None = None) -> datetime:
    """Raise `InvalidPolicyVersion` if the version cannot be published as given; return when it
    would take effect. Separate from publishing so the admin form can show errors on their field."""
    return _check_new_version(purpose_named(purpose), label=label, text=text, effective_from=effective_from)


def _check_new_version(target: Purpose, *, label: str, text: str, effective_from: datetime | None) -> datetime:
    now = timezone.now()
    when = now if effective_from is None else effective_from
    if not label or len(label) > 32 or label != label.strip():
        raise InvalidPolicyVersion("A version needs a label of at most 32 characters.", param="label")
    if not text.strip():
        raise InvalidPolicyVersion("A version needs its text.", param="text")
    if timezone.is_naive(when):
        raise InvalidPolicyVersion("Give the time with its time zone.", param="effective_from")
    if when < now - PUBLISH_GRACE:
        raise InvalidPolicyVersion("A version cannot take effect in the past.", param="effective_from")
    if target.versions.filter(label=label).exists():
        raise InvalidPolicyVersion("This purpose already has a version with this label.", param="label")
    latest = target.versions.order_by("-effective_from").values_list("effective_from", flat=True).first()
    if latest is not None and when <= latest:
        raise InvalidPolicyVersion("A version must take effect after the latest one.", param="effective_from")
    return when


def policy_version_publish(
    *,
    purpose: str,
    label: str,
    text: str,
    effective_from: datetime | None = None,
    is_material: bool = False,
    actor_type: str = AuditActorType.SYSTEM,
    actor_id: str = PUBLISHER,
) -> PolicyVersion:
    """Publish a purpose's policy text, in force from `effective_from` (default: now). A material
    version makes earlier grants stop counting from then until the person consents again.
    Audited (`policy.publish`, naming the purpose and the version's id; a member of staff
    publishing is given as `actor_type`/`actor_id`)."""
    with transaction.atomic():
        # Publications for one purpose queue on its row, so two cannot both pass the order check.
        target = Purpose.objects.select_for_update().filter(slug=purpose).first() if isinstance(purpose, str) else None
        if target is None:
            raise UnknownPurpose()
        when = _check_new_version(target, label=label, text=text, effective_from=effective_from)
        version = PolicyVersion.objects.create(
            purpose=target, label=label, text=text, effective_from=when, is_material=is_material
        )
        fields = [f"consent.policyversion.id_{version.pk}", *(["is_material"] if is_material else [])]
        audit_record(
            actor_type=actor_type, actor_id=actor_id, action="policy.publish", purpose=target.slug, fields=fields
        )
        return version


def policy_draft_publish(*, draft_id: uuid.UUID | str, actor_type: str, actor_id: str) -> PolicyVersion:
    """Publish a draft as it stands (through `policy_version_publish`, so checked and audited)
    and mark it published: from then on it is a record of what was published, not a text to edit.
    A draft without a date takes effect now."""
    with transaction.atomic():
        draft = PolicyDraft.objects.select_for_update().select_related("purpose").filter(pk=draft_id).first()
        if draft is None:
            raise InvalidPolicyVersion("No such draft.", param="draft")
        if draft.published_id is not None:
            raise InvalidPolicyVersion("This draft is already published.", param="draft")
        version = policy_version_publish(
            purpose=draft.purpose.slug,
            label=draft.label,
            text=draft.text,
            effective_from=draft.effective_from,
            is_material=draft.is_material,
            actor_type=actor_type,
            actor_id=actor_id,
        )
        draft.published = version
        draft.save(update_fields=["published", "updated_at"])
        return version
