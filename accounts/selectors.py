"""Reads of identity data other apps may make."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount
from allauth.usersessions.models import UserSession

from accounts.models import (
    PurgeReason,
    SealedSocialAccountData,
    SealedSocialToken,
    SocialLinkState,
    User,
    normalize_email,
)
from accounts.social.policies import provider_policy
from profiles.models import Source
from profiles.selectors import profile_source_fields


def account_email(*, subject_id: uuid.UUID) -> str | None:
    """The login email of an active account (a plaintext login identifier, for mail delivery)."""
    return User.objects.filter(pk=subject_id, is_active=True).values_list("email", flat=True).first()


@dataclass(frozen=True)
class AccountOverview:
    """An account as the staff's person page shows it (the address only to be masked there)."""

    subject_id: uuid.UUID
    email: str
    is_active: bool
    is_staff: bool
    created_at: datetime
    last_login: datetime | None


def accounts_overview(*, subject_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, AccountOverview]:
    """The accounts among these subject ids (active or not), in one query."""
    rows = User.objects.filter(pk__in=list(subject_ids)).values_list(
        "id", "email", "is_active", "is_staff", "created_at", "last_login"
    )
    return {row[0]: AccountOverview(*row) for row in rows}


def account_ids(*, limit: int) -> list[uuid.UUID]:
    """The oldest accounts' ids."""
    return list(User.objects.order_by("created_at").values_list("id", flat=True)[:limit])


def account_with_login(*, email: str) -> uuid.UUID | None:
    """Whose login identifier is exactly this address (normalized as sign-up stores it)."""
    return User.objects.filter(email=normalize_email(email)).values_list("id", flat=True).first()


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


@dataclass(frozen=True)
class ConnectedProvider:
    """A linked social account named by its provider only: the provider's id for the person
    (`uid`) stays out, so a page listing links cannot leak it."""

    provider: str
    connected_at: datetime
    last_login: datetime | None


def social_providers_of(*, subject_id: uuid.UUID) -> list[ConnectedProvider]:
    """The providers the person linked, oldest first. One query; nothing sealed is read."""
    rows = SocialAccount.objects.filter(user_id=subject_id).order_by("date_joined", "pk")
    return [ConnectedProvider(*row) for row in rows.values_list("provider", "date_joined", "last_login")]


def social_account_subject(*, provider: str, uid: str) -> uuid.UUID | None:
    """Whose is the link with this provider's user id (e.g. Meta's app-scoped id), if anyone's."""
    return SocialAccount.objects.filter(provider=provider, uid=uid).values_list("user_id", flat=True).first()


@dataclass(frozen=True)
class SocialLinkOverview:
    """What the connected-accounts page says about one link: when its provider's data was last
    refreshed, which fields it filled (labels, never values), and when that data will be removed
    unless refreshed again; or when and why it was removed. Reads no personal data."""

    last_refresh_at: datetime | None
    imported: list[str]
    remove_by: datetime | None
    max_age_days: int
    purged_at: datetime | None = None
    purge_reason: str = ""

    @property
    def revoked(self) -> bool:
        return self.purge_reason == PurgeReason.REVOKED


def social_link_overview(*, account: SocialAccount) -> SocialLinkOverview:
    policy = provider_policy(account.provider)
    state = SocialLinkState.objects.filter(account_id=account.pk).first()
    max_age_days = policy.max_age.days
    if state is not None and state.purged_at is not None:
        return SocialLinkOverview(state.last_success_at, [], None, max_age_days, state.purged_at, state.purge_reason)
    provider = account.provider[:64]
    imported = profile_source_fields(subject_id=account.user_id, source=Source.SOCIAL, source_name=provider)
    last = state.last_success_at if state is not None else account.last_login
    labels = [label for _, label, _ in imported]
    return SocialLinkOverview(last, labels, last + policy.max_age if last else None, max_age_days)
