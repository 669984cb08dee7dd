"""How recently, and how strongly, the signed-in person proved who they are: what the rights
app asks before it discloses or destroys data (GDPR Art. 12(6)). It reads the authentication
records allauth keeps in the session (a sign-in, a re-authentication, a second factor)."""

import time
from enum import StrEnum
from types import SimpleNamespace
from typing import Any, cast

from allauth.account import app_settings as account_settings
from allauth.account.authentication import get_authentication_records
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest

# Factors that count: a recovery code is a fallback for them, not a factor one can set up alone.
_FACTORS = [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]


class Proof(StrEnum):
    """What the session proves now: a recent authentication, with the second factor when the
    person has one; or what is still missing."""

    RECENT = "reauthentication"
    RECENT_WITH_MFA = "reauthentication_mfa"
    STALE = "stale"  # no authentication within the re-authentication window
    NEEDS_MFA = "needs_mfa"  # recent, but the person has a second factor and did not use it


def identity_proof(*, user: Any, session: SessionBase) -> Proof:
    """A sign-in or re-authentication within allauth's `ACCOUNT_REAUTHENTICATION_TIMEOUT`
    counts; a person with a second factor must have used it within that window too."""
    records = get_authentication_records(cast(HttpRequest, SimpleNamespace(session=session)), user)
    since = time.time() - account_settings.REAUTHENTICATION_TIMEOUT
    recent = [record for record in records if isinstance(record.get("at"), int | float) and record["at"] >= since]
    if not is_mfa_enabled(user, _FACTORS):
        return Proof.RECENT if recent else Proof.STALE
    if any(record.get("method") == "mfa" for record in recent):
        return Proof.RECENT_WITH_MFA
    return Proof.NEEDS_MFA if recent else Proof.STALE
