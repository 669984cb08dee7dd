"""Caching and browser-feature headers: nothing about a person is stored by a cache."""

import json
from urllib.parse import urlencode

import pytest


@pytest.mark.django_db
def test_api_answers_are_never_stored_and_vary_on_the_session_token(client, alice):
    client.force_login(alice)
    response = client.get("/api/v1/me/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]
    vary = {part.strip().lower() for part in response["Vary"].split(",")}
    assert {"cookie", "x-session-token"} <= vary


@pytest.mark.django_db
def test_an_api_error_is_not_stored_either(client):
    response = client.get("/api/v1/me/")
    assert response.status_code in (401, 403)
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/", "/profile/", "/consent/", "/privacy/access-log/"])
def test_pages_of_a_signed_in_person_are_never_stored(client, alice, profile_schema, page):
    client.force_login(alice)
    response = client.get(page)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_every_response_denies_powerful_browser_features(client):
    for url in ("/", "/healthz", "/.well-known/gpc.json", "/accounts/login/"):
        policy = client.get(url)["Permissions-Policy"]
        assert "camera=()" in policy and "geolocation=()" in policy and "microphone=()" in policy


@pytest.mark.django_db
def test_public_documents_keep_their_own_caching(client):
    assert "no-store" not in client.get("/.well-known/gpc.json").get("Cache-Control", "")


# --- Inputs that used to answer 500 -----------------------------------------------------------
@pytest.fixture
def lenient(client):
    """A client that returns the 500 page instead of raising, as a real client would see it."""
    client.raise_request_exception = False
    return client


def _envelope(response, status, code):
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body["status"] == status
    assert body["errors"][0]["code"] == code
    return body


@pytest.mark.django_db
def test_a_lone_surrogate_in_a_profile_value_is_refused(lenient, alice, profile_schema):
    lenient.force_login(alice)
    body = '{"values": {"given_name": "Ada \\ud800"}}'
    _envelope(lenient.patch("/api/v1/me/profile/", body, content_type="application/json"), 400, "invalid_characters")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/api/v1/me/profile/", "/_allauth/browser/v1/auth/login", "/_allauth/app/v1/auth/login"]
)
def test_json_nested_100000_deep_is_refused(lenient, alice, url):
    lenient.force_login(alice)
    deep = "[" * 100_000 + "]" * 100_000
    _envelope(
        lenient.generic("PATCH" if "me/" in url else "POST", url, deep, content_type="application/json"),
        400,
        "too_deep",
    )


@pytest.mark.django_db
def test_a_body_over_the_upload_limit_answers_413(lenient, alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    lenient.force_login(alice)
    body = '{"values": {"given_name": "' + "x" * 20_000 + '"}}'
    _envelope(lenient.patch("/api/v1/me/profile/", body, content_type="application/json"), 413, "too_large")


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/me/events/?kind=order%00x", "/api/v1/me/documents/?kind=a%00"])
def test_a_nul_byte_in_the_query_is_refused(lenient, alice, url):
    lenient.force_login(alice)
    _envelope(lenient.get(url), 400, "invalid_characters")


@pytest.mark.django_db
def test_a_nul_byte_in_a_page_address_or_form_is_a_400_page(lenient, alice, profile_schema):
    assert lenient.get("/consent/policies/marketing/v%001/").status_code == 400
    lenient.force_login(alice)
    form = {"purpose": "news\x00letter", "action": "grant"}
    assert lenient.post("/consent/", form).status_code == 400
    assert (
        lenient.post("/consent/", urlencode(form), content_type="application/x-www-form-urlencoded").status_code == 400
    )


@pytest.mark.django_db
def test_the_signed_in_devices_page_renders(lenient, alice):
    lenient.force_login(alice)
    assert lenient.get("/accounts/sessions/").status_code == 200


@pytest.mark.django_db
def test_an_unknown_field_name_is_not_echoed_in_full(lenient, alice, profile_schema):
    lenient.force_login(alice)
    key = "k" * 10_000 + "\x07<script>"
    body = json.dumps({"values": {key: 1}})
    error = _envelope(lenient.patch("/api/v1/me/profile/", body, content_type="application/json"), 400, "unknown_field")
    param = error["errors"][0]["param"]
    assert len(param) <= 64
    assert "\x07" not in param and "<" not in param


@pytest.mark.django_db
def test_a_write_for_an_erased_person_answers_410(lenient, alice, profile_schema):
    from vault.services import subject_keys_shred

    lenient.force_login(alice)
    subject_keys_shred(subject_id=alice.pk, actor_type="system", actor_id="test")
    body = json.dumps({"values": {"given_name": "Ada"}})
    _envelope(lenient.patch("/api/v1/me/profile/", body, content_type="application/json"), 410, "person_erased")


@pytest.mark.django_db
def test_text_that_merely_spells_a_nul_escape_is_kept(lenient, alice, profile_schema):
    """A person may write a backslash and 'u0000' as text; only a real NUL character is refused."""
    lenient.force_login(alice)
    body = json.dumps({"values": {"given_name": "\\u0000 is how JSON writes NUL"}})
    response = lenient.patch("/api/v1/me/profile/", body, content_type="application/json")
    assert response.status_code == 200, response.content
    real = json.dumps({"values": {"given_name": "a\x00b"}})
    _envelope(lenient.patch("/api/v1/me/profile/", real, content_type="application/json"), 400, "invalid_characters")


@pytest.mark.django_db
def test_a_nul_byte_in_the_session_cookie_is_no_session(lenient):
    """Django decodes an octal escape in a quoted cookie; PostgreSQL refuses NUL in text."""
    cookie = {"HTTP_COOKIE": 'sessionid="abcdefgh\\000ijkl"'}
    assert lenient.get("/", **cookie).status_code == 200
    assert lenient.get("/api/v1/me/", **cookie).status_code == 401
