"""What a provider brought leaves with it (DESIGN.md invariant 6), unless the person keeps it.

A link removed on the connected-accounts page first re-labels the values the person ticked
"keep as my own" (`social_values_keep`: source `self_service`, one audit entry naming the fields:
the ledger of that choice), then allauth deletes the link (its tokens are revoked at the
provider just before, accounts/social/revocation.py) and `social_source_purge` deletes the rest.
A provider's own deletion request (Meta's data deletion callback) deletes the link and what it
brought without asking the provider anything (`social_provider_data_delete`).
"""

import uuid
from collections.abc import Collection
from typing import Any

from allauth.socialaccount.models import SocialAccount
from allauth.socialaccount.signals import social_account_removed
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.social.revocation import revocation_skipped
from profiles.gate import Actor
from profiles.models import Source
from profiles.selectors import profile_source_fields
from profiles.services import profile_source_keep, profile_source_purge
from vault.audit import audit_record

PROVIDER_DELETION_ACTOR = Actor.system("social.provider-deletion")
# What a link holds besides the profile values it brought: deleted with it (foreign keys cascade).
LINK_FIELDS = ["social.access_token", "social.extra_data", "social.refresh_token"]


def social_source_name(provider: str) -> str:
    """The `source_name` of the values a provider brought (`ProfileValue.source_name` is 64 long)."""
    return provider[:64]


def _other_link_remains(*, subject_id: uuid.UUID, provider: str, account_id: int | None) -> bool:
    return SocialAccount.objects.filter(user_id=subject_id, provider=provider).exclude(pk=account_id).exists()


def social_imported_fields(*, account: SocialAccount) -> list[tuple[str, str, bool]]:
    """The profile fields whose current value this link's provider brought, as (key, label,
    keepable); empty while another link to the same provider remains (removing this one then
    purges nothing). No value is decrypted."""
    if _other_link_remains(subject_id=account.user_id, provider=account.provider, account_id=account.pk):
        return []
    return profile_source_fields(
        subject_id=account.user_id, source=Source.SOCIAL, source_name=social_source_name(account.provider)
    )


def social_values_keep(*, account: SocialAccount, keys: Collection[str], actor: Actor) -> list[str]:
    """Before the link is removed: keep these values its provider brought as the person's own
    (self-provided), so the purge leaves them. Returns the keys kept (see
    `profiles.services.profile_source_keep`: only fields the person may set themselves)."""
    if not keys or _other_link_remains(subject_id=account.user_id, provider=account.provider, account_id=account.pk):
        return []
    return profile_source_keep(
        subject_id=account.user_id,
        source=Source.SOCIAL,
        source_name=social_source_name(account.provider),
        keys=keys,
        actor=actor,
    )


def social_source_purge(*, subject_id: uuid.UUID, provider: str, actor: Actor) -> int:
    """Delete the values, history and documents a provider brought, unless another link of the
    person to the same provider remains (call it once the link is gone). Returns rows deleted."""
    if _other_link_remains(subject_id=subject_id, provider=provider, account_id=None):
        return 0
    return profile_source_purge(
        subject_id=subject_id, source=Source.SOCIAL, source_name=social_source_name(provider), actor=actor
    )


def social_provider_data_delete(*, provider: str, uid: str) -> uuid.UUID | None:
    """A provider told us the person asked it to delete what we hold from it (Meta's data
    deletion callback): unlink the account `uid` at `provider`, deleting its sealed tokens and
    answer, and purge what that provider brought. The provider is not asked to revoke anything
    (the person removed the app there). Returns the person's subject id, or None when no such
    link exists (nothing happens). Audited: the link's fields, then the purge's."""
    with transaction.atomic():
        account = SocialAccount.objects.select_for_update().filter(provider=provider, uid=uid).first()
        if account is None:
            return None
        subject_id = account.user_id
        with revocation_skipped():
            account.delete()
        audit_record(
            **PROVIDER_DELETION_ACTOR.audit(),
            action="social.provider_deletion",
            fields=LINK_FIELDS,
            subject_id=subject_id,
        )
        social_source_purge(subject_id=subject_id, provider=provider, actor=PROVIDER_DELETION_ACTOR)
    return subject_id


@receiver(social_account_removed, dispatch_uid="accounts.social.purge_on_disconnect")
def _purge_on_disconnect(sender: Any, request: HttpRequest, socialaccount: SocialAccount, **kwargs: Any) -> None:
    """Disconnecting a provider (the page or allauth's headless API) takes away what it brought
    (DESIGN.md invariant 6): the values it filled in and its documents (but those the person
    chose to keep, already re-labelled as their own), unless another link to the same provider
    remains."""
    social_source_purge(
        subject_id=socialaccount.user_id, provider=socialaccount.provider, actor=Actor.person(socialaccount.user_id)
    )
