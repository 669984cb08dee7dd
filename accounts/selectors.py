"""Reads of identity data other apps may make."""

import uuid
from dataclasses import dataclass

from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession

from accounts.models import User


def account_email(*, subject_id: uuid.UUID) -> str | None:
    """The login email of an active account (a plaintext login identifier, for mail delivery)."""
    return User.objects.filter(pk=subject_id, is_active=True).values_list("email", flat=True).first()


def account_exists(*, subject_id: uuid.UUID) -> bool:
    """Whether an account (active or not) holds this subject id."""
    return User.objects.filter(pk=subject_id).exists()


@dataclass(frozen=True)
class SecuritySummary:
    """How a person signs in, as their security page shows it (no secret is read)."""

    totp: bool
    webauthn_count: int
    recovery_codes: bool

    @property
    def has_second_factor(self) -> bool:
        return self.totp or self.webauthn_count > 0


def account_security(*, subject_id: uuid.UUID) -> SecuritySummary:
    kinds = list(Authenticator.objects.filter(user_id=subject_id).values_list("type", flat=True))
    return SecuritySummary(
        totp=Authenticator.Type.TOTP in kinds,
        webauthn_count=kinds.count(Authenticator.Type.WEBAUTHN),
        recovery_codes=Authenticator.Type.RECOVERY_CODES in kinds,
    )


def account_sessions(*, user: User) -> list[UserSession]:
    """The person's signed-in devices, newest first (expired ones are purged on the way)."""
    return sorted(UserSession.objects.purge_and_list(user), key=lambda session: session.created_at, reverse=True)
