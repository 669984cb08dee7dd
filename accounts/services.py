"""Writes of identity data other apps may make: a person's account ended and erased (DESIGN.md
invariant 3). The rights app orchestrates an erasure; it calls these in this order:

1. `account_erasure_begin`: signing in becomes impossible and every session ends, at once;
2. `accounts.social.social_tokens_revoke`: the provider tokens are revoked while they can still
   be unsealed;
3. the keys are destroyed (`vault.services.subject_keys_shred`);
4. `account_erase`: the account's rows are deleted (in the background, like the profile's).

None of them writes an audit entry: the rights app writes the erasure's one tombstone.
"""

import uuid
from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount, SocialToken
from allauth.usersessions.models import UserSession
from django.contrib.admin.models import LogEntry
from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import models, transaction
from django.utils import timezone

from accounts.models import SealedSocialAccountData, SealedSocialToken, User
from accounts.sessions import SessionStore
from accounts.social.provider_sessions import PROVIDER_SESSIONS_KEY
from accounts.social.revocation import revocation_skipped


def _sessions_end(subject_id: uuid.UUID) -> None:
    """Delete the person's sessions, browser cookies and app session tokens alike (both are
    rows of the session table, which allauth's `UserSession` rows name), and those rows: two
    queries, whatever their number."""
    keys = UserSession.objects.filter(user_id=subject_id).values("session_key")
    SessionStore.get_model_class().objects.filter(session_key__in=keys).delete()
    UserSession.objects.filter(user_id=subject_id).delete()


# allauth's record, in each session, of how its person signed in (allauth.account.internal.flows.
# login): a list of {"method": "socialaccount", "provider": <provider id>, "uid": ..., "at": ...}
# and the id of the user it belongs to.
_AUTHENTICATION_RECORDS = "account_authentication_methods"
_AUTHENTICATION_RECORDS_USER = "account_authentication_methods_user"


def _signed_in_with(
    session_data: str, *, subject_id: uuid.UUID, provider: str, provider_session: str | None = None
) -> bool:
    # Django's own decoding (the signature checked), not the vault backend's: these records are
    # not sealed, and unsealing the pending sign-in state would be a needless, audited decryption.
    data = DatabaseSessionStore().decode(session_data)
    records = data.get(_AUTHENTICATION_RECORDS)
    if data.get(_AUTHENTICATION_RECORDS_USER) != str(subject_id) or not isinstance(records, list):
        return False
    if provider_session is not None:
        markers = data.get(PROVIDER_SESSIONS_KEY)
        if not isinstance(markers, list) or provider_session not in markers:
            return False
    return any(
        isinstance(record, dict) and record.get("method") == "socialaccount" and record.get("provider") == provider
        for record in records
    )


def account_sessions_end(
    *, subject_id: uuid.UUID, provider: str | None = None, provider_session: str | None = None
) -> int:
    """End the person's sessions (browser cookies and app session tokens alike): all of them,
    or, given a provider id (allauth's `SocialAccount.provider`: "google", an OpenID Connect
    app's id), only those that signed in with that provider, as allauth's authentication records
    in each session tell; given also a provider session's marker (the keyed hash of its `sid`,
    accounts/social/provider_sessions.py), only the session that sign-in recorded it in.
    Returns how many sessions were ended. The account stays usable."""
    if provider_session is not None and provider is None:
        raise ValueError("A provider session belongs to a provider: name it.")
    subject_id = uuid.UUID(str(subject_id))
    session_model = SessionStore.get_model_class()
    with transaction.atomic():
        tracked = UserSession.objects.filter(user_id=subject_id)
        if provider is None:
            keys = list(tracked.values_list("session_key", flat=True))
        else:
            sessions = session_model.objects.filter(session_key__in=tracked.values("session_key"))
            keys = [
                session.session_key
                for session in sessions.only("session_key", "session_data")
                if _signed_in_with(
                    session.session_data, subject_id=subject_id, provider=provider, provider_session=provider_session
                )
            ]
        ended, _ = session_model.objects.filter(session_key__in=keys).delete()
        tracked.filter(session_key__in=keys).delete()
    return ended


def account_erasure_begin(*, subject_id: uuid.UUID) -> None:
    """Make signing in impossible at once and end every session of the person, in a constant
    number of queries: the account is deactivated and its password made unusable (a password,
    a passkey or a provider login then meets an inactive account, and a session that escaped the
    deletion no longer authenticates: Django refuses inactive users and the session's password
    hash no longer matches), and every session the person has is deleted."""
    subject_id = uuid.UUID(str(subject_id))
    with transaction.atomic():
        User.objects.filter(pk=subject_id).update(
            is_active=False, password=make_password(None), updated_at=timezone.now()
        )
        _sessions_end(subject_id)


def account_erase(*, subject_id: uuid.UUID) -> None:
    """Delete the person's account and everything of it: sessions, linked social accounts with
    their (sealed) tokens and provider answers, e-mail addresses (with their confirmations),
    MFA authenticators, the staff admin's log entries about these rows and the person's own as a
    staff member, and the user row with its group and permission links. Idempotent: erasing an
    erased account deletes nothing. Provider tokens are not revoked here (they can no longer be
    unsealed once the keys are gone): `social_tokens_revoke` does that first."""
    subject_id = uuid.UUID(str(subject_id))
    with transaction.atomic():
        _sessions_end(subject_id)
        owned: list[tuple[type[models.Model], Any]] = [
            (User, User.objects.filter(pk=subject_id)),
            (EmailAddress, EmailAddress.objects.filter(user_id=subject_id)),
            (SocialAccount, SocialAccount.objects.filter(user_id=subject_id)),
            (SocialToken, SocialToken.objects.filter(account__user_id=subject_id)),
            (Authenticator, Authenticator.objects.filter(user_id=subject_id)),
        ]
        # The admin's change log names an edited row by id and by its `str()`, which for an
        # e-mail address is the address itself.
        about = models.Q(pk__in=[])
        for model, rows in owned:
            object_ids = [str(pk) for pk in rows.values_list("pk", flat=True)]
            if object_ids:
                content_type = ContentType.objects.get_for_model(model)
                about |= models.Q(content_type=content_type, object_id__in=object_ids)
        LogEntry.objects.filter(about | models.Q(user_id=subject_id)).delete()
        SealedSocialToken.objects.filter(subject_id=subject_id).delete()
        SealedSocialAccountData.objects.filter(subject_id=subject_id).delete()
        with revocation_skipped():  # revoked before the keys went; they cannot be unsealed now
            for _, rows in reversed(owned):
                rows.delete()
