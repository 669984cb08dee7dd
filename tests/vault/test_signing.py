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
