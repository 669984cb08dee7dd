"""The proof a request that discloses, changes or destroys data needs: a recent
re-authentication, with the second factor when the person has one (accounts.verification reads
it from the session allauth keeps). Portal pages and API views call `proof_of`."""

from typing import Any

from django.contrib.sessions.backends.base import SessionBase

from accounts.verification import Proof, identity_proof
from rights.errors import MfaRequired, ReauthenticationRequired
from rights.models import Verification


def proof_of(*, user: Any, session: SessionBase) -> str:
    """How the caller is verified now, or the typed error saying what is missing."""
    match identity_proof(user=user, session=session):
        case Proof.RECENT:
            return Verification.REAUTHENTICATION
        case Proof.RECENT_WITH_MFA:
            return Verification.REAUTHENTICATION_MFA
        case Proof.NEEDS_MFA:
            raise MfaRequired()
    raise ReauthenticationRequired()


def api_session(request: Any) -> SessionBase:
    """The session behind an API call: an app's X-Session-Token session (allauth headless puts
    it in `request.auth`), else the browser's."""
    return request.auth if isinstance(request.auth, SessionBase) else request.session
