import base64
import hashlib
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from vault.keys import LocalKeyProvider, get_provider
from vault.signing import ALGORITHM, jwk_thumbprint, jws_sign, jws_verify


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.django_db
def test_statements_verify_with_the_published_key_set(client):
    token = jws_sign({"consentReceiptID": "r-1", "piiPrincipalId": "s-1"}, content_type="test")
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    key_set = response.json()
    assert [key["alg"] for key in key_set["keys"]] == ["EdDSA"]
    assert "d" not in key_set["keys"][0], "only the public half is published"
    assert jws_verify(token, key_set)["consentReceiptID"] == "r-1"


@pytest.mark.django_db
def test_a_changed_statement_does_not_verify(client):
    token = jws_sign({"consentReceiptID": "r-1"}, content_type="test")
    header, payload, signature = token.split(".")
    forged = jws_sign({"consentReceiptID": "r-2"}, content_type="test").split(".")[1]
    with pytest.raises(jwt.InvalidSignatureError):
        jws_verify(f"{header}.{forged}.{signature}", client.get("/.well-known/jwks.json").json())
    assert payload != forged


@pytest.mark.django_db
def test_receipts_signed_before_a_key_rotation_still_verify(client):
    from django.core.management import call_command

    old = jws_sign({"consentReceiptID": "r-old"}, content_type="test")
    call_command("vault_keys", "rotate-receipt-key")
    new = jws_sign({"consentReceiptID": "r-new"}, content_type="test")
    response = client.get("/.well-known/jwks.json")
    assert "max-age=300" in response["Cache-Control"], "a cached copy soon shows the new key"
    key_set = response.json()
    assert len(key_set["keys"]) == 2
    assert jws_verify(old, key_set)["consentReceiptID"] == "r-old"
    assert jws_verify(new, key_set)["consentReceiptID"] == "r-new"
    assert jwt.get_unverified_header(old)["kid"] != jwt.get_unverified_header(new)["kid"]


def test_the_thumbprint_matches_rfc_8037s_example():
    """RFC 8037, appendix A.3: the JWK thumbprint (RFC 7638) of the example Ed25519 key."""
    key = Ed25519PublicKey.from_public_bytes(_b64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"))
    assert jwk_thumbprint(key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.mark.django_db
def test_the_kid_is_the_rfc_7638_thumbprint_of_the_published_key(client):
    token = jws_sign({"consentReceiptID": "r-1"}, content_type="test")
    (published,) = client.get("/.well-known/jwks.json").json()["keys"]
    raw = get_provider().receipt_signing_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert published["x"] == _b64url(raw)
    # RFC 7638: only the required members, in lexicographic order, no whitespace.
    canonical = json.dumps({name: published[name] for name in ("crv", "kty", "x")}, separators=(",", ":"))
    thumbprint = _b64url(hashlib.sha256(canonical.encode()).digest())
    assert canonical.startswith('{"crv":"Ed25519","kty":"OKP","x":"')
    assert jwt.get_unverified_header(token)["kid"] == published["kid"] == thumbprint


@pytest.mark.django_db
def test_receipts_signed_under_the_legacy_kid_still_verify(client):
    """Receipts signed before the kid was the thumbprint carry the first 16 bytes of the SHA-256
    of the raw key, base64url: the key that name points to still verifies them."""
    private_key = get_provider().receipt_signing_key()
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    legacy_kid = _b64url(hashlib.sha256(raw).digest()[:16])
    old = jwt.encode({"consentReceiptID": "r-old"}, private_key, algorithm=ALGORITHM, headers={"kid": legacy_kid})
    key_set = client.get("/.well-known/jwks.json").json()
    assert legacy_kid not in [key["kid"] for key in key_set["keys"]]
    assert jws_verify(old, key_set)["consentReceiptID"] == "r-old"

    unknown = jwt.encode({"consentReceiptID": "r-x"}, private_key, algorithm=ALGORITHM, headers={"kid": "no-such-key"})
    with pytest.raises(jwt.InvalidKeyError, match="No published key"):
        jws_verify(unknown, key_set)


# A process that signs and publishes, started before a rotation and asked again after it: its
# first answer goes to argv[1] (written whole, then renamed), its second to stdout once argv[2]
# exists. Bounded: it gives up after 30 s without the go-ahead.
_SIGNER = """
import json, os, sys, time
from pathlib import Path

import django

django.setup()
from django.test import Client

from vault.signing import jws_sign


def answer(label):
    published = Client().get("/.well-known/jwks.json", HTTP_HOST="127.0.0.1")
    return {"token": jws_sign({"consentReceiptID": label}, content_type="test"), "jwks": published.json()}


first, go = Path(sys.argv[1]), Path(sys.argv[2])
partial = first.with_suffix(".partial")
partial.write_text(json.dumps(answer("r-before")))
os.replace(partial, first)
for _ in range(3000):
    if go.exists():
        break
    time.sleep(0.01)
else:
    sys.exit("no go-ahead within 30 s")
print(json.dumps(answer("r-after")))
"""


@pytest.mark.slow
def test_a_running_process_signs_and_publishes_with_a_key_rotated_by_another(vault_keys, tmp_path):
    """Several workers share one key file: after `vault_keys rotate-receipt-key` in another
    process, a running one signs with the new key and publishes it (with the old one) at its
    very next read, without a restart, so every receipt verifies against every worker's JWKS."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "VAULT_", "DATABASE_"))}
    # Requests to the JWK Set never reach a database; this one keeps the child off any other.
    env = {
        **base,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "VAULT_KEKS_FILE": str(vault_keys),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    first, go = tmp_path / "first.json", tmp_path / "go"
    signer = subprocess.Popen(
        [sys.executable, "-c", _SIGNER, str(first), str(go)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):  # up to 30 s for Django to start
            if first.exists() or signer.poll() is not None:
                break
            time.sleep(0.05)
        assert first.exists(), signer.communicate(timeout=10)
        before = json.loads(first.read_text())

        # The rotation is audited: its process needs the audit log's tables.
        migrated = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stderr
        rotated = subprocess.run(
            [sys.executable, "manage.py", "vault_keys", "rotate-receipt-key"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert rotated.returncode == 0, rotated.stderr
        go.touch()
        out, err = signer.communicate(timeout=60)
    finally:
        if signer.poll() is None:
            signer.kill()
            signer.wait(timeout=10)
    assert signer.returncode == 0, err
    after = json.loads(out)

    old_kid = jwt.get_unverified_header(before["token"])["kid"]
    new_kid = jwt.get_unverified_header(after["token"])["kid"]
    assert [key["kid"] for key in before["jwks"]["keys"]] == [old_kid]
    rotated_key = LocalKeyProvider(path=str(vault_keys)).receipt_signing_key().public_key()
    assert new_kid == jwk_thumbprint(rotated_key) != old_kid, "the running process signs with the new key"
    assert [key["kid"] for key in after["jwks"]["keys"]] == [new_kid, old_kid], "and publishes it, the old one kept"
    assert jws_verify(before["token"], after["jwks"])["consentReceiptID"] == "r-before"
    assert jws_verify(after["token"], after["jwks"])["consentReceiptID"] == "r-after"
