"""Reads of identity data other apps may make."""

import uuid

from accounts.models import User


def account_email(*, subject_id: uuid.UUID) -> str | None:
    """The login email of an active account (a plaintext login identifier, for mail delivery)."""
    return User.objects.filter(pk=subject_id, is_active=True).values_list("email", flat=True).first()
