"""Caching and browser-feature headers: nothing about a person is stored by a cache."""

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
