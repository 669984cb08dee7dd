"""Social-login data that accounts keeps sealed (accounts/social/sealing.py seals it): a linked
account's provider answer and tokens, and pending sign-in state held in the session. accounts
reads its rows and passes them, or the sealed state, in; the gate checks the purpose, decrypts
and writes the audit entry, as it does for profile data."""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from profiles.errors import FieldNotForPurpose
from profiles.gate.actors import Actor
from profiles.gate.decrypt import decrypt_rows
from profiles.gate.planning import ACCOUNT_PURPOSE, RIGHTS_PURPOSE, check_access, purpose_for
from vault import crypto, keys
from vault.audit import audit_record
from vault.fields import SealedField
from vault.models import AuditActorType


@dataclass(frozen=True)
class SocialTokenValue:
    app_id: int | None
    access_token: str
    refresh_token: str
    expires_at: datetime | None


@dataclass(frozen=True)
class SocialAccountData:
    provider: str
    extra_data: dict[str, Any]
    tokens: list[SocialTokenValue]


def _sealed_field(row: Any, name: str) -> SealedField:
    field = type(row)._meta.get_field(name)
    assert isinstance(field, SealedField)
    return field


def social_account_unseal(
    *,
    subject_id: uuid.UUID,
    provider: str,
    data: Any | None,
    tokens: Sequence[Any],
    purpose: str,
    actor: Actor,
) -> SocialAccountData:
    """A linked social account's sealed provider answer and tokens: for account management (a
    token refresh, a call to the provider) or the person's own rights. One audit entry.

    accounts reads the rows (`accounts.social.social_account_read`), all of them the person
    `subject_id`'s: `data`, the account's sealed provider answer (`extra_data`) or None, and
    `tokens`, its sealed tokens (`access_token`, `refresh_token`), each with allauth's token
    (`token`: its app and expiry) loaded."""
    if purpose not in (ACCOUNT_PURPOSE, RIGHTS_PURPOSE):
        raise FieldNotForPurpose(param="purpose")
    subject_id = crypto.as_subject_id(subject_id)
    if any(row.subject_id != subject_id for row in [*([] if data is None else [data]), *tokens]):
        raise ValueError("Sealed social data of another person.")
    check_access(subject_id=subject_id, purpose=purpose_for(purpose))
    extra: Any = {}
    if data is not None and data.extra_data:
        extra = decrypt_rows(subject_id, [data], _sealed_field(data, "extra_data"))[0]
    plain: dict[str, dict[uuid.UUID, str]] = {}
    for name in ("access_token", "refresh_token"):
        present = [row for row in tokens if getattr(row, name) is not None]
        values = decrypt_rows(subject_id, present, _sealed_field(present[0], name)) if present else []
        plain[name] = {row.pk: value for row, value in zip(present, values, strict=True)}
    unsealed = [
        SocialTokenValue(
            row.token.app_id,
            plain["access_token"].get(row.pk, ""),
            plain["refresh_token"].get(row.pk, ""),
            row.token.expires_at,
        )
        for row in tokens
    ]
    audit_record(
        **actor.audit(),
        action="social.unseal",
        purpose=purpose,
        fields=["social.extra_data", *(["social.access_token", "social.refresh_token"] if tokens else [])],
        subject_id=subject_id,
    )
    return SocialAccountData(provider, extra, unsealed)


def social_pending_unseal(*, sealed: dict[str, str], context: str, name: str, field: str) -> Any:
    """Pending sign-in state (a social sign-up awaiting its form, a reauthentication, a TOTP
    secret being set up), as `accounts.social.social_pending_seal` sealed it under `context`
    (its label for this kind of state) and session key `name`: for finishing that step (account
    management). No person may exist yet, so the audit entry names none; it names the state as
    `field`."""
    plaintext = crypto.decrypt_standalone(sealed, context=keys.associated_data(context, name))
    audit_record(
        actor_type=AuditActorType.SYSTEM,
        actor_id="social-login",
        action="social.pending_unseal",
        purpose=ACCOUNT_PURPOSE,
        fields=[field],
    )
    return json.loads(plaintext)
