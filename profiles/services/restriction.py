"""Restriction of processing (GDPR Art. 18): while it lasts, the gate releases the person's
data only for their rights and legal obligations. The rights services call these."""

import uuid

from django.db import transaction

from profiles.gate import Actor
from profiles.models import Restriction
from vault.audit import audit_record


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
