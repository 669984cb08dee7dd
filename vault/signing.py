"""Signed statements the vault hands out (consent receipts): compact JWS with EdDSA (Ed25519),
and the one way the vault names a signing key (`jwk_thumbprint`).

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


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(public_key: Ed25519PublicKey) -> str:
    """The key's RFC 7638 JWK thumbprint: base64url of the SHA-256 of its canonical JWK, which for
    Ed25519 (RFC 8037) is `{"crv":"Ed25519","kty":"OKP","x":...}`. The vault's one name for a
    signing key: the `kid` of receipts and of the JWK Set, and the key an audit checkpoint names.
    Anyone holding the public key computes the same."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def key_names(public_key: Ed25519PublicKey) -> frozenset[str]:
    """Every name the key may carry on something signed with it: its thumbprint and, for what
    was signed before the thumbprint named keys, the legacy names, which are accepted when
    verifying and never written: the hex SHA-256 of the raw key (the `key_fingerprint` of older
    audit checkpoints) and its first 16 bytes in base64url (the `kid` of older receipts)."""
    digest = hashlib.sha256(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).digest()
    return frozenset((jwk_thumbprint(public_key), digest.hex(), _b64url(digest[:16])))


def jws_sign(payload: dict[str, Any], *, content_type: str) -> str:
    private_key = get_provider().receipt_signing_key()
    headers = {"kid": jwk_thumbprint(private_key.public_key()), "cty": content_type}
    return jwt.encode(payload, private_key, algorithm=ALGORITHM, headers=headers)


def jwks() -> dict[str, Any]:
    """The current receipt key first, then retired ones, which still verify older receipts."""
    keys = []
    for public_key in get_provider().receipt_verify_keys():
        jwk = json.loads(OKPAlgorithm.to_jwk(public_key))
        jwk.update(kid=jwk_thumbprint(public_key), use="sig", alg=ALGORITHM)
        keys.append(jwk)
    return {"keys": keys}


def jws_verify(token: str, key_set: dict[str, Any]) -> dict[str, Any]:
    """Verify a JWS against a JWK Set (as a relying party would, from /.well-known/jwks.json)."""
    kid = jwt.get_unverified_header(token).get("kid")
    claims: dict[str, Any] = jwt.decode(
        token, _key_named(key_set, kid), algorithms=[ALGORITHM], options={"verify_aud": False}
    )
    return claims


def _key_named(key_set: dict[str, Any], kid: Any) -> Ed25519PublicKey:
    """The published key that `kid` names: by its kid or, for a receipt signed before
    thumbprints named keys, by one of its legacy names (`key_names`)."""
    keys = key_set.get("keys", [])
    for jwk in keys:
        if jwk.get("kid") == kid:
            return _ed25519_key(jwk, kid)
    for jwk in keys:
        if (jwk.get("kty"), jwk.get("crv")) == ("OKP", "Ed25519"):
            public_key = _ed25519_key(jwk, kid)
            if kid in key_names(public_key):
                return public_key
    raise jwt.InvalidKeyError(f"No published key {kid!r}.")


def _ed25519_key(jwk: dict[str, Any], kid: Any) -> Ed25519PublicKey:
    public_key = OKPAlgorithm.from_jwk(json.dumps(jwk))
    if not isinstance(public_key, Ed25519PublicKey):
        raise jwt.InvalidKeyError(f"Key {kid!r} is not an Ed25519 public key.")
    return public_key


# Short enough that a cached copy soon shows a rotated key (`vault_keys rotate-receipt-key`).
@require_GET
@cache_control(public=True, max_age=300)
def jwks_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(jwks())
