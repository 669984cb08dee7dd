"""Meta's data deletion callback: a `signed_request` proves that Facebook sent it.

The form field is `<base64url signature>.<base64url JSON payload>` (no padding); the signature is
HMAC-SHA256 of the payload's base64url text under the app secret, and the payload's `algorithm`
must say `HMAC-SHA256`. Its `user_id` is the app-scoped id of the person (allauth's
`SocialAccount.uid` for provider "facebook"). The rights app's view answers Meta; this module
only verifies (in constant time) and says why a request is refused, never echoing it.
"""

import base64
import binascii
import hashlib
import hmac
import json
from enum import StrEnum
from typing import Any

from allauth.socialaccount.adapter import get_adapter

from vault.errors import ApplicationError, ErrorKind

FACEBOOK = "facebook"
ALGORITHM = "HMAC-SHA256"
MAX_SIGNED_REQUEST_LENGTH = 8192  # Meta's are a few hundred characters


class MetaCode(StrEnum):
    SIGNED_REQUEST_INVALID = "signed_request_invalid"
    PROVIDER_NOT_CONFIGURED = "provider_not_configured"


class SignedRequestInvalid(ApplicationError):
    """Malformed, of another algorithm, or not signed with our app secret: nothing happens."""

    code = MetaCode.SIGNED_REQUEST_INVALID
    message = "The signed_request is malformed or its signature does not verify."
    param_name = "signed_request"


class ProviderNotConfigured(ApplicationError):
    """No Facebook app is configured here, so no request can be verified."""

    kind = ErrorKind.NOT_FOUND
    code = MetaCode.PROVIDER_NOT_CONFIGURED
    message = "Facebook sign-in is not configured on this server."


def _b64url_decode(text: str) -> bytes:
    if not text.isascii():
        raise SignedRequestInvalid()
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise SignedRequestInvalid() from None


def meta_signed_request_verify(*, signed_request: str, app_secret: str) -> dict[str, Any]:
    """The payload of a `signed_request` whose HMAC-SHA256 signature under `app_secret` verifies
    (compared in constant time) and whose `algorithm` is HMAC-SHA256, with a string `user_id`;
    otherwise `SignedRequestInvalid`."""
    if not app_secret:
        raise ProviderNotConfigured()
    if not isinstance(signed_request, str) or len(signed_request) > MAX_SIGNED_REQUEST_LENGTH:
        raise SignedRequestInvalid()
    encoded_signature, dot, encoded_payload = signed_request.partition(".")
    if not dot or not encoded_signature or not encoded_payload or not encoded_payload.isascii():
        raise SignedRequestInvalid()
    signature = _b64url_decode(encoded_signature)
    expected = hmac.new(app_secret.encode(), encoded_payload.encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise SignedRequestInvalid()
    # Signed by Meta; still checked, as Meta's documentation asks.
    try:
        payload = json.loads(_b64url_decode(encoded_payload))
    except ValueError:  # not UTF-8, not JSON
        raise SignedRequestInvalid() from None
    if not isinstance(payload, dict) or str(payload.get("algorithm", "")).upper() != ALGORITHM:
        raise SignedRequestInvalid()
    user_id = payload.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        payload["user_id"] = user_id = str(user_id)
    if not isinstance(user_id, str) or not user_id:
        raise SignedRequestInvalid()
    return payload


def facebook_app_secret() -> str:
    """The Facebook app's secret as allauth knows it (SOCIAL_FACEBOOK_SECRET, or a SocialApp)."""
    try:
        app = get_adapter().get_app(None, provider=FACEBOOK)
    except Exception:  # allauth raises SocialApp.DoesNotExist (none) or MultipleObjectsReturned
        raise ProviderNotConfigured() from None
    if not app.secret:
        raise ProviderNotConfigured()
    return str(app.secret)
