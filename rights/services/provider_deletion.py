"""A sign-in provider's request to delete what we hold from it (Meta's data deletion callback).

Meta calls us when a person removes the app in their Facebook settings and asks for their data
to be deleted, with a `signed_request` that proves Facebook sent it (verified by
`accounts.social.meta`). By default (`SOCIAL_FACEBOOK_DELETION_SCOPE=provider`) what Facebook
brought goes: the link with its sealed tokens and answer, and the profile values and documents
it filled in (`accounts.social.social_provider_data_delete`); the provider is not asked to
revoke anything (the app was removed there). With `account`, the person is erased, as an
erasure request from the provider with no grace period (`erasure_by_provider`).

Either way the answer is a confirmation code with a public status page. The code is random
and names nobody; an unknown user id gets a code too, completed at once, so the answer does
not tell whether an account exists.
"""

import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.selectors import social_account_subject
from accounts.social import social_provider_data_delete
from accounts.social.meta import FACEBOOK, facebook_app_secret, meta_signed_request_verify
from rights.models import ProviderDeletion, ProviderDeletionStatus
from rights.services.erasure import erasure_by_provider

SCOPE_PROVIDER, SCOPE_ACCOUNT = "provider", "account"
CODE_BYTES = 18  # 144 random bits, 24 characters


def provider_deletion_code_new() -> str:
    return secrets.token_urlsafe(CODE_BYTES)


def facebook_deletion_request(*, signed_request: str) -> ProviderDeletion:
    """Verify Meta's `signed_request` (a forged, malformed or wrong-algorithm one raises
    `SignedRequestInvalid`, and nothing happens), delete what the setting says, and return the
    confirmation whose code and status page Meta shows the person."""
    payload = meta_signed_request_verify(signed_request=signed_request, app_secret=facebook_app_secret())
    uid = payload["user_id"]
    deletion = ProviderDeletion.objects.create(code=provider_deletion_code_new(), provider=FACEBOOK)
    waiting = None
    subject_id = social_account_subject(provider=FACEBOOK, uid=uid)
    with transaction.atomic():
        # What Facebook brought goes at once, in both scopes: the person removed the app there,
        # so there is no grant left to revoke, and the erasure below then does not try.
        social_provider_data_delete(provider=FACEBOOK, uid=uid)
    if settings.SOCIAL_FACEBOOK_DELETION_SCOPE == SCOPE_ACCOUNT and subject_id is not None:
        # The request's id while a legal hold pauses the erasure: the code completes when it runs.
        waiting = erasure_by_provider(subject_id=subject_id, provider=FACEBOOK)
    if waiting is not None:
        ProviderDeletion.objects.filter(pk=deletion.pk).update(request_id=waiting)
    else:
        ProviderDeletion.objects.filter(pk=deletion.pk).update(
            status=ProviderDeletionStatus.COMPLETED, completed_at=timezone.now()
        )
        deletion.refresh_from_db()
    return deletion
