"""The HTTP surface a newcomer meets first: portal, admin, API docs, security headers."""

import pytest
from django.contrib.staticfiles import finders


@pytest.mark.django_db
def test_portal_home_renders_with_a_strict_content_security_policy(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Create an account" in response.content
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_openapi_schema_is_generated(client):
    response = client.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Consent and profile vault API"
    assert "/api/v1/me/" in schema["paths"]


@pytest.mark.django_db
def test_api_docs_work_offline(client):
    """Swagger UI's assets are served from our own static files, and its script is a file."""
    page = client.get("/api/docs/").content.decode()
    assert "cdn" not in page.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


@pytest.mark.django_db
def test_admin_is_staff_only(client, alice, staff):
    client.force_login(alice)
    assert client.get("/admin/").status_code == 302
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
