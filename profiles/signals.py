"""Identity resolution when a person proves an email address is theirs (django-allauth's signals).

`email_confirmed` fires when a person confirms an address (the link or code of an email, or staff
marking it verified in the admin). A social sign-up whose provider vouches for the address
creates it already verified and sends only `user_signed_up`, so that signal is heard too. Either
way, profiles held without an account under that address (a partner's, an import's) are merged
into the account.
"""

import logging
import uuid
from typing import Any

from allauth.account.models import EmailAddress

from profiles.errors import ProfileError
from profiles.services import profile_merge_verified_email

logger = logging.getLogger(__name__)


def merge_on_email_confirmed(sender: Any, *, email_address: EmailAddress, **kwargs: Any) -> None:
    if email_address.verified:
        _merge(email_address.user_id, email_address.email)


def merge_on_signup(sender: Any, *, user: Any, **kwargs: Any) -> None:
    for email in EmailAddress.objects.filter(user_id=user.pk, verified=True).values_list("email", flat=True):
        _merge(user.pk, email)


def _merge(subject_id: uuid.UUID, email: str) -> None:
    """A merge that cannot be made must not break signing in: it is logged (ids only) and left
    to staff, who can merge from the admin API."""
    try:
        merges = profile_merge_verified_email(subject_id=subject_id, email=email)
    except ProfileError as error:
        logger.warning("Identity resolution for %s failed: %s", subject_id, error.code)
        return
    for merge in merges:
        logger.info("Merged profile %s into %s (verified email), merge %s", merge.merged_id, subject_id, merge.pk)
