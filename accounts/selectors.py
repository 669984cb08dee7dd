"""Reads of identity data other apps may make."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount
from allauth.usersessions.models import UserSession

from accounts.models import SealedSocialAccountData, SealedSocialToken, User


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


@dataclass(frozen=True)
class LinkedAccount:
    """A linked social account as stored: plaintext bookkeeping (provider, the provider's id for
    the person, dates) and the sealed rows, for the gate to unseal (`social_account_unseal`)."""

    provider: str
    uid: str
    connected_at: datetime
    last_login: datetime | None
    data: SealedSocialAccountData | None
    tokens: list[SealedSocialToken]


def social_accounts_sealed(*, subject_id: uuid.UUID) -> list[LinkedAccount]:
    """The person's linked social accounts with their sealed provider data and tokens (each
    token with allauth's row loaded, for its app and expiry), oldest first. Nothing is
    decrypted here. Three queries, however many accounts."""
    accounts = list(SocialAccount.objects.filter(user_id=subject_id).order_by("date_joined", "pk"))
    ids = [account.pk for account in accounts]
    data = {
        row.account_id: row for row in SealedSocialAccountData.objects.filter(account_id__in=ids, subject_id=subject_id)
    }
    tokens: dict[int, list[SealedSocialToken]] = {}
    sealed_tokens = SealedSocialToken.objects.filter(subject_id=subject_id, token__account_id__in=ids)
    for token in sealed_tokens.select_related("token").order_by("created_at", "pk"):
        tokens.setdefault(token.token.account_id, []).append(token)
    return [
        LinkedAccount(
            provider=account.provider,
            uid=account.uid,
            connected_at=account.date_joined,
            last_login=account.last_login,
            data=data.get(account.pk),
            tokens=tokens.get(account.pk, []),
        )
        for account in accounts
    ]


def social_account_subject(*, provider: str, uid: str) -> uuid.UUID | None:
    """Whose is the link with this provider's user id (e.g. Meta's app-scoped id), if anyone's."""
    return SocialAccount.objects.filter(provider=provider, uid=uid).values_list("user_id", flat=True).first()
