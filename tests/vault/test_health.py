import pytest
from django.db import OperationalError

from vault import health


@pytest.mark.django_db
def test_healthy_when_every_dependency_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["down"] == []
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["keys"] == {"ok": True}
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.slow
@pytest.mark.django_db
def test_503_names_an_unreachable_broker(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # the discard port: nothing listens
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["down"] == ["broker"]
    assert body["checks"]["database"]["ok"] is True
    assert "127.0.0.1" not in response.content.decode(), "no connection details in a public answer"


@pytest.mark.django_db
def test_503_names_a_broken_database(client, monkeypatch):
    def database_down():
        raise OperationalError("connection refused")

    monkeypatch.setitem(health.CHECKS, "database", database_down)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["down"] == ["database"]


def test_healthz_is_exempt_from_the_https_redirect(client, settings, db):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/schema/").status_code == 301


@pytest.mark.django_db
def test_503_names_unusable_keys(client, settings, tmp_path):
    settings.VAULT_KEKS_FILE = str(tmp_path / "gone.json")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["down"] == ["keys"]
    assert "gone.json" not in response.content.decode()
