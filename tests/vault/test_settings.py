"""Production settings, checked the way an operator would: `manage.py check --deploy`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "p" + "r0duct10n-s3cret-" * 4


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "VAULT_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    keks = tmp_path / "keks"
    keks.write_text("key material is checked by the key provider")
    return {
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": SECRET,
        "VAULT_KEKS_FILE": str(keks),
        "VAULT_INDEX_KEY": "index-root-key",
        "ALLOWED_HOSTS": "vault.example.com",
        "VAULT_VAR_DIR": str(tmp_path),
    }


def test_production_passes_check_deploy_without_warnings(production_env):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("unset", "message"),
    [
        ("DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) must be set"),
        ("VAULT_KEKS_FILE", "VAULT_KEKS (or the matching _FILE variable) must be set"),
        ("VAULT_INDEX_KEY", "VAULT_INDEX_KEY (or the matching _FILE variable) must be set"),
        ("ALLOWED_HOSTS", "ALLOWED_HOSTS must name the site's host(s)"),
    ],
)
def test_production_refuses_to_start_without_its_secrets(production_env, unset, message):
    del production_env[unset]
    result = manage("check", env=production_env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_production_refuses_debug(production_env):
    result = manage("check", env={**production_env, "DJANGO_DEBUG": "true"})
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be off" in result.stderr


def test_bad_value_is_named_at_startup():
    result = manage("check", env={"DATABASE_CONN_MAX_AGE": "forever"})
    assert result.returncode != 0
    assert "DATABASE_CONN_MAX_AGE must be an integer" in result.stderr


def test_development_needs_no_configuration(tmp_path):
    result = manage("check", env={"VAULT_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
