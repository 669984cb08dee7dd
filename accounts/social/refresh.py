"""Keeping what a provider brought fresh and lawful (DESIGN.md invariant 6; docs/social-login.md).

Each linked social account has a `SocialLinkState`: when it is due, when it last succeeded, how
often it failed, and whether its data was purged and why. The beat task claims due links in
bounded batches (a conditional update, so two workers never take the same link) and refreshes
each one: a new access token from the sealed refresh token, the provider's current answer, the
fields the person chose to import brought up to date (accounts/social/imports.py), the answer and
tokens sealed again by the handlers in sealing.py. A later sign-in with the provider does the
same with the answer it brought.

An outage never deletes anything by itself: the link is tried again with backoff (5 minutes,
doubling, at most the provider's refresh interval). A revoked grant purges at once. Data that
could not be refreshed for the provider's maximum age is purged too. A purge removes the values
and documents the provider brought, its tokens and its sealed answer; the link itself stays (it
is still a way to sign in, and the page tells the person why the data went). Every refresh,
failure and purge is audited, naming fields, never values.
"""

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialLogin, SocialToken
from allauth.socialaccount.signals import social_account_updated
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import PurgeReason, SealedSocialAccountData, SocialLinkState
from accounts.social.fetch import (
    GrantRevoked,
    NoUsableToken,
    RefreshFailed,
    RefreshUnsupported,
    provider_answer_fetch,
)
from accounts.social.imports import social_claims_refresh
from accounts.social.policies import ProviderPolicy, provider_policy
from accounts.social.revocation import social_account_revoke
from accounts.social.sealing import social_account_read
from profiles.gate import ACCOUNT_PURPOSE, Actor
from profiles.models import Source
from profiles.selectors import profile_is_restricted, profiles_restricted
from profiles.services import profile_source_purge
from vault.audit import audit_record
from vault.errors import ApplicationError

logger = logging.getLogger("accounts.social")

ACTOR = Actor.system("social-refresh")
CLAIM_LEASE = timedelta(minutes=15)  # a claimed link that was not finished is due again after this
RETRY_FIRST = timedelta(minutes=5)  # then doubling, at most the provider's refresh interval
_SEALED_FIELDS = ["social.extra_data", "social.access_token", "social.refresh_token"]


@dataclass(frozen=True)
class RefreshOutcome:
    """What one refresh did: `code` is "refreshed", "purged", "skipped" or a failure's code."""

    code: str
    fields: tuple[str, ...] = ()


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _first_due(policy: ProviderPolicy, now: datetime) -> datetime | None:
    return now + policy.refresh_every if policy.refresh_every else None


def social_link_state_ensure(*, account: SocialAccount, now: datetime | None = None) -> SocialLinkState:
    """The link's state, created when missing: counted from the last sign-in with it (when its
    answer was last sealed), or from now."""
    now = _now(now)
    state = SocialLinkState.objects.filter(account_id=account.pk).first()
    if state is not None:
        return state
    since = min(account.last_login or now, now)
    state, _ = SocialLinkState.objects.get_or_create(
        account_id=account.pk,
        defaults={
            "subject_id": account.user_id,
            "last_success_at": since,
            "next_refresh_at": _first_due(provider_policy(account.provider), since),
        },
    )
    return state


@receiver(post_save, sender=SocialAccount, dispatch_uid="accounts.social.link_state")
def _link_state_on_link(sender: Any, instance: SocialAccount, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if created and not raw:
        social_link_state_ensure(account=instance)


def social_links_claim(*, limit: int, now: datetime | None = None) -> list[int]:
    """Claim up to `limit` due links (their social account ids) for refreshing: each is pushed
    `CLAIM_LEASE` into the future by a conditional update, so another worker claiming at the same
    time skips it, and a worker that dies leaves it due again after the lease."""
    now = _now(now)
    for account in SocialAccount.objects.filter(link_state__isnull=True)[:limit]:
        social_link_state_ensure(account=account, now=now)
    due = (
        SocialLinkState.objects.filter(next_refresh_at__lte=now, purged_at__isnull=True)
        .order_by("next_refresh_at")
        .values_list("pk", "account_id", "next_refresh_at")[:limit]
    )
    claimed = []
    for pk, account_id, due_at in due:
        taken = SocialLinkState.objects.filter(pk=pk, next_refresh_at=due_at, purged_at__isnull=True).update(
            next_refresh_at=now + CLAIM_LEASE, updated_at=now
        )
        if taken:
            claimed.append(account_id)
    return claimed


def _app(provider_id: str) -> SocialApp:
    try:
        return get_adapter().get_app(None, provider=provider_id)
    except (SocialApp.DoesNotExist, SocialApp.MultipleObjectsReturned):
        raise RefreshUnsupported() from None


def social_link_refresh(*, account_id: int, now: datetime | None = None) -> RefreshOutcome:
    """Refresh one link from its provider (see the module's docstring). Safe to run twice: a
    second run finds nothing changed. A failure is recorded, never raised."""
    now = _now(now)
    account = SocialAccount.objects.filter(pk=account_id).first()
    if account is None:
        return RefreshOutcome("skipped")
    state = social_link_state_ensure(account=account, now=now)
    if state.purged_at is not None:
        return RefreshOutcome("skipped")
    policy = provider_policy(account.provider)
    if profile_is_restricted(subject_id=account.user_id):
        # Restricted processing (GDPR Art. 18): nothing is fetched, written or purged while it
        # lasts; the data is only kept. The link is looked at again after one interval.
        state.next_refresh_at = now + (policy.refresh_every or timedelta(days=1))
        state.save(update_fields=["next_refresh_at", "updated_at"])
        return RefreshOutcome("restricted")
    try:
        app = _app(account.provider)
        sealed = social_account_read(account_id=account.pk, purpose=ACCOUNT_PURPOSE, actor=ACTOR)
        token = next((t for t in sealed.tokens if t.access_token or t.refresh_token), None)
        if token is None:
            raise NoUsableToken()
        fetched = provider_answer_fetch(
            app=app, token=token, uid=account.uid, extra_data=sealed.extra_data or {}, now=now
        )
    except GrantRevoked:
        _record_failure(state, GrantRevoked.code, policy, now, soon=False)
        social_link_purge(account_id=account.pk, reason=PurgeReason.REVOKED, now=now, actor=ACTOR)
        return RefreshOutcome("purged")
    except RefreshFailed as error:
        _record_failure(state, error.code, policy, now, soon=error.retry_soon)
        if now >= state.last_success_at + policy.max_age:
            social_link_purge(account_id=account.pk, reason=PurgeReason.STALE, now=now, actor=ACTOR)
            return RefreshOutcome("purged")
        return RefreshOutcome(error.code)

    with transaction.atomic():
        account.extra_data = fetched.extra_data
        account.save(update_fields=["extra_data"])  # sealed by accounts/social/sealing.py
        stored = SocialToken.objects.filter(account_id=account.pk, app_id=token.app_id).first()
        if stored is not None:
            stored.token, stored.token_secret, stored.expires_at = (
                fetched.access_token,
                fetched.refresh_token,  # "" keeps the sealed refresh token
                fetched.expires_at,
            )
            stored.save()
        written = _claims_update(account, fetched.extra_data, ACTOR, now)
        _record_success(state, policy, now)
        _audit(account.user_id, ACTOR, "social.refresh", [*_SEALED_FIELDS, *(f"profile.{key}" for key in written)])
    return RefreshOutcome("refreshed", tuple(written))


def _claims_update(account: SocialAccount, extra_data: Any, actor: Actor, now: datetime) -> list[str]:
    """The imported fields brought up to date; a refusal by the profile (say, the person
    restricted processing) leaves them as they are, and the tokens are still kept."""
    try:
        with transaction.atomic():
            return social_claims_refresh(account=account, extra_data=extra_data, actor=actor, collected_at=now)
    except ApplicationError as error:
        logger.warning("Refreshing the profile from provider %s refused: %s", account.provider, error.code)
        return []


def social_link_signed_in(*, account: SocialAccount, extra_data: Any, now: datetime | None = None) -> list[str]:
    """A sign-in with an existing link counts as a refresh: allauth has sealed the answer it
    brought (and will seal its tokens); the imported fields are brought up to date from it and the
    link is fresh again, a purged one included (its answer and tokens are back)."""
    now = _now(now)
    actor = Actor.person(account.user_id)
    with transaction.atomic():
        state = social_link_state_ensure(account=account, now=now)
        written = _claims_update(account, extra_data, actor, now)
        _record_success(state, provider_policy(account.provider), now)
        _audit(account.user_id, actor, "social.refresh", ["social.extra_data", *(f"profile.{k}" for k in written)])
    return written


@receiver(social_account_updated, dispatch_uid="accounts.social.refresh_on_sign_in")
def _refresh_on_sign_in(sender: Any, request: HttpRequest, sociallogin: SocialLogin, **kwargs: Any) -> None:
    account = sociallogin.account
    try:
        social_link_signed_in(account=account, extra_data=account.extra_data)
    except Exception as error:  # a refresh must never stop a sign-in
        logger.warning("Refreshing on sign-in with provider %s failed: %s", account.provider, type(error).__name__)


def _record_success(state: SocialLinkState, policy: ProviderPolicy, now: datetime) -> None:
    state.last_refresh_at = state.last_success_at = now
    state.next_refresh_at = _first_due(policy, now)
    state.failures, state.last_error = 0, ""
    state.revoked_at = state.purged_at = None
    state.purge_reason = ""
    state.save()


def _record_failure(state: SocialLinkState, code: str, policy: ProviderPolicy, now: datetime, *, soon: bool) -> None:
    state.failures += 1
    state.last_refresh_at, state.last_error = now, str(code)[:32]
    interval = policy.refresh_every or timedelta(days=1)
    wait = min(RETRY_FIRST * 2 ** min(state.failures - 1, 20), interval) if soon else interval
    state.next_refresh_at = now + wait
    state.save()
    _audit(state.subject_id, ACTOR, "social.refresh_failed", [])
    logger.info("Refreshing social account %s failed (%s); attempt %s", state.account_id, code, state.failures)


def social_link_purge(*, account_id: int, reason: str, actor: Actor, now: datetime | None = None) -> bool:
    """Remove what a link's provider brought: the profile values and documents with it as source
    (unless another live link to the same provider remains), the link's tokens and its sealed
    answer. The link stays, with the reason, for the person to read. Returns False if it was
    already purged."""
    now = _now(now)
    if reason not in PurgeReason.values:
        raise ValueError(f"Unknown purge reason {reason!r}.")
    if (
        reason == PurgeReason.STALE
        and not SocialLinkState.objects.filter(account_id=account_id, purged_at__isnull=False).exists()
    ):
        # Data past its maximum age goes, and so does the grant that could fetch it again: revoked
        # at the provider where it allows it (a revoked grant needs nothing more), before the
        # tokens are deleted. A provider that does not answer is logged and the purge goes on.
        social_account_revoke(account_id=account_id)
    with transaction.atomic():
        account = SocialAccount.objects.select_for_update().get(pk=account_id)
        state = social_link_state_ensure(account=account, now=now)
        state = SocialLinkState.objects.select_for_update().get(pk=state.pk)
        if state.purged_at is not None:
            return False
        others = (
            SocialAccount.objects.filter(user_id=account.user_id, provider=account.provider)
            .exclude(pk=account.pk)
            .filter(Q(link_state__isnull=True) | Q(link_state__purged_at__isnull=True))
        )
        if not others.exists():
            profile_source_purge(
                subject_id=account.user_id, source=Source.SOCIAL, source_name=account.provider[:64], actor=actor
            )
        SealedSocialAccountData.objects.filter(account_id=account.pk).delete()
        SocialToken.objects.filter(account_id=account.pk).delete()  # their sealed rows cascade
        state.purged_at, state.purge_reason, state.next_refresh_at = now, reason, None
        if reason == PurgeReason.REVOKED:
            state.revoked_at = now
        state.save()
        _audit(account.user_id, actor, f"social.purged_{reason}", _SEALED_FIELDS)
    return True


def social_links_expire(*, limit: int, now: datetime | None = None) -> int:
    """Purge links whose data is past its provider's maximum age without a successful refresh
    (links that are never refreshed on a schedule, or whose refresh keeps failing). Bounded;
    returns how many were purged."""
    now = _now(now)
    purged = 0
    providers = SocialLinkState.objects.filter(purged_at__isnull=True).values_list("account__provider", flat=True)
    for provider_id in sorted(set(providers)):
        cutoff = now - provider_policy(provider_id).max_age
        stale = SocialLinkState.objects.filter(
            purged_at__isnull=True, account__provider=provider_id, last_success_at__lte=cutoff
        ).values_list("account_id", "subject_id")
        for chunk in _chunks(stale.iterator(chunk_size=500), 500):
            restricted = profiles_restricted(subject_ids=[subject for _, subject in chunk])
            for account_id, subject_id in chunk:
                if subject_id in restricted:
                    continue  # kept while processing is restricted (Art. 18): only stored
                purged += social_link_purge(account_id=account_id, reason=PurgeReason.STALE, actor=ACTOR, now=now)
                if purged >= limit:
                    return purged
    return purged


def _chunks(rows: Iterator[tuple[int, uuid.UUID]], size: int) -> Iterator[list[tuple[int, uuid.UUID]]]:
    chunk: list[tuple[int, uuid.UUID]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _audit(subject_id: uuid.UUID, actor: Actor, action: str, fields: list[str]) -> None:
    audit_record(**actor.audit(), action=action, purpose=ACCOUNT_PURPOSE, fields=fields, subject_id=subject_id)
