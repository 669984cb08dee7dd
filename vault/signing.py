"""Signed statements the vault hands out (consent receipts): compact JWS with EdDSA (Ed25519).

The verification keys are published as a JWK Set at /.well-known/jwks.json, so a person or a
regulator can check a receipt without asking us. PyJWT does the JOSE encoding; the key comes
from the key provider, like every other key.
"""

import base64
import hashlib
import json
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET
from jwt.algorithms import OKPAlgorithm

from vault.keys import get_provider

ALGORITHM = "EdDSA"


def key_id(public_key: Ed25519PublicKey) -> str:
    """The JWK thumbprint-like id of a key: first 16 bytes of SHA-256 of its raw bytes, base64url."""
    digest = hashlib.sha256(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def jws_sign(payload: dict[str, Any], *, content_type: str) -> str:
    private_key = get_provider().receipt_signing_key()
    headers = {"kid": key_id(private_key.public_key()), "cty": content_type}
    return jwt.encode(payload, private_key, algorithm=ALGORITHM, headers=headers)


def jwks() -> dict[str, Any]:
    """The current receipt key first, then retired ones, which still verify older receipts."""
    keys = []
    for public_key in get_provider().receipt_verify_keys():
        jwk = json.loads(OKPAlgorithm.to_jwk(public_key))
        jwk.update(kid=key_id(public_key), use="sig", alg=ALGORITHM)
        keys.append(jwk)
    return {"keys": keys}


def jws_verify(token: str, key_set: dict[str, Any]) -> dict[str, Any]:
    """Verify a JWS against a JWK Set (as a relying party would, from /.well-known/jwks.json)."""
    kid = jwt.get_unverified_header(token).get("kid")
    for jwk in key_set.get("keys", []):
        if jwk.get("kid") == kid:
            public_key = OKPAlgorithm.from_jwk(json.dumps(jwk))
            if not isinstance(public_key, Ed25519PublicKey):
                raise jwt.InvalidKeyError(f"Key {kid!r} is not an Ed25519 public key.")
            claims: dict[str, Any] = jwt.decode(
                token, public_key, algorithms=[ALGORITHM], options={"verify_aud": False}
            )
            return claims
    raise jwt.InvalidKeyError(f"No published key {kid!r}.")


@require_GET
@cache_control(public=True, max_age=3600)
def jwks_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(jwks())
