"""Nothing a provider sent stays in plaintext: allauth's tokens and profile answer are taken off
each instance before it is saved and sealed under the person's "tokens" key; reading them back
goes through the gate (`social_account_read`). Disconnecting purges what the provider brought
(accounts/social/disconnect.py)."""

import uuid
from typing import Any

from allauth.socialaccount.models import SocialAccount, SocialToken
from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from accounts.models import SealedSocialAccountData, SealedSocialToken
from profiles.gate import (
    ACCOUNT_PURPOSE,
    Actor,
    SocialAccountData,
    social_account_unseal,
)
from vault import crypto
from vault.audit import audit_record
from vault.fields import seal
from vault.models import AuditActorType

_ACTOR = "social-login"


@receiver(pre_save, sender=SocialAccount, dispatch_uid="accounts.social.take_extra_data")
def _take_extra_data(sender: Any, instance: SocialAccount, raw: bool = False, **kwargs: Any) -> None:
    if raw or not instance.extra_data:
        return
    instance._vault_extra_data = instance.extra_data
    instance.extra_data = {}


@receiver(post_save, sender=SocialAccount, dispatch_uid="accounts.social.seal_extra_data")
def _seal_extra_data(sender: Any, instance: SocialAccount, raw: bool = False, **kwargs: Any) -> None:
    data = instance.__dict__.pop("_vault_extra_data", None)
    if raw or data is None:
        return
    social_account_data_seal(account=instance, extra_data=data)
    instance.extra_data = data  # this request may still show it (allauth's messages and mails)


@receiver(pre_save, sender=SocialToken, dispatch_uid="accounts.social.take_token")
def _take_token(sender: Any, instance: SocialToken, raw: bool = False, **kwargs: Any) -> None:
    if raw or not (instance.token or instance.token_secret):
        return
    instance._vault_token = (instance.token, instance.token_secret)
    instance.token, instance.token_secret = "", ""


@receiver(post_save, sender=SocialToken, dispatch_uid="accounts.social.seal_token")
def _seal_token(sender: Any, instance: SocialToken, raw: bool = False, **kwargs: Any) -> None:
    taken = instance.__dict__.pop("_vault_token", None)
    if raw or taken is None:
        return
    social_token_seal(token=instance, access_token=taken[0], refresh_token=taken[1])
    instance.token, instance.token_secret = taken


def social_account_data_seal(*, account: SocialAccount, extra_data: dict[str, Any]) -> None:
    """Keep the provider's profile response of `account` sealed (replacing the earlier one)."""
    with transaction.atomic():
        row = SealedSocialAccountData.objects.select_for_update().filter(account_id=account.pk).first()
        if row is None:
            row = SealedSocialAccountData(id=uuid.uuid4(), account_id=account.pk)
        row.subject_id = account.user_id
        seal(row, "extra_data", extra_data)
        row.save()
        _audit(account.user_id, "social.data_sealed", ["social.extra_data"])


def social_token_seal(*, token: SocialToken, access_token: str, refresh_token: str) -> None:
    """Keep a provider token sealed. A refresh that brings no new refresh token keeps the old
    one (most OAuth2 providers send it once), as allauth does with its own column."""
    subject_id = SocialAccount.objects.filter(pk=token.account_id).values_list("user_id", flat=True).get()
    with transaction.atomic():
        row = SealedSocialToken.objects.select_for_update().filter(token_id=token.pk).first()
        if row is None:
            row = SealedSocialToken(id=uuid.uuid4(), token_id=token.pk)
        if row.subject_id != subject_id:
            row.subject_id, row.refresh_token = subject_id, None
        seal(row, "access_token", access_token)
        if refresh_token:
            seal(row, "refresh_token", refresh_token)
        row.save()
        _audit(subject_id, "social.token_sealed", ["social.access_token", "social.refresh_token"])


def social_account_read(*, account_id: int, purpose: str, actor: Actor) -> SocialAccountData:
    """A linked social account's provider answer and tokens, for account management (a token
    refresh, a call to the provider) or the person's own rights: the sealed rows are read here
    and unsealed by the gate, which checks the purpose and writes the audit entry."""
    account = SocialAccount.objects.get(pk=account_id)
    subject_id = crypto.as_subject_id(account.user_id)
    tokens = SealedSocialToken.objects.filter(subject_id=subject_id, token__account_id=account.pk)
    return social_account_unseal(
        subject_id=subject_id,
        provider=account.provider,
        data=SealedSocialAccountData.objects.filter(account_id=account.pk, subject_id=subject_id).first(),
        tokens=list(tokens.select_related("token")),
        purpose=purpose,
        actor=actor,
    )


def _audit(subject_id: uuid.UUID, action: str, fields: list[str]) -> None:
    audit_record(
        actor_type=AuditActorType.SYSTEM,
        actor_id=_ACTOR,
        action=action,
        purpose=ACCOUNT_PURPOSE,
        fields=fields,
        subject_id=subject_id,
    )
