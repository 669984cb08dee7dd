import jwt
import pytest

from vault.signing import jws_sign, jws_verify


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
    key_set = client.get("/.well-known/jwks.json").json()
    assert len(key_set["keys"]) == 2
    assert jws_verify(old, key_set)["consentReceiptID"] == "r-old"
    assert jws_verify(new, key_set)["consentReceiptID"] == "r-new"
    assert jwt.get_unverified_header(old)["kid"] != jwt.get_unverified_header(new)["kid"]
