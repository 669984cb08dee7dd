"""Production settings, checked the way an operator would: `manage.py check --deploy`."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vault.keys import new_key_set, write_key_file

# Each test starts manage.py in a subprocess: about a second apiece.
pytestmark = pytest.mark.slow

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
    keks = tmp_path / "keks.json"
    write_key_file(keks, new_key_set(), overwrite=False)
    return {
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": SECRET,
        "VAULT_KEKS_FILE": str(keks),
        "VAULT_INDEX_KEY": base64.b64encode(os.urandom(32)).decode(),
        "ALLOWED_HOSTS": "vault.example.com",
        "VAULT_VAR_DIR": str(tmp_path),
        "VAULT_SITE_URL": "https://vault.example.com",
        "CACHE_URL": "redis://127.0.0.1:6379/3",
        "AUDIT_CHECKPOINT_SINK": str(tmp_path / "checkpoints"),
        "VAULT_ERASURE_JOURNAL": str(tmp_path / "erasure-journal.jsonl"),
    }


def test_production_passes_check_deploy_without_warnings(production_env):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_warns_when_audit_checkpoints_are_not_exported(production_env):
    del production_env["AUDIT_CHECKPOINT_SINK"]
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env)
    assert result.returncode != 0
    assert "vault.W001" in result.stderr and "AUDIT_CHECKPOINT_SINK is not set" in result.stderr


def test_check_deploy_warns_when_erasures_are_not_journalled(production_env):
    del production_env["VAULT_ERASURE_JOURNAL"]
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env)
    assert result.returncode != 0
    assert "vault.W002" in result.stderr and "VAULT_ERASURE_JOURNAL is not set" in result.stderr


@pytest.mark.parametrize(
    ("unset", "message"),
    [
        ("DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) must be set"),
        ("VAULT_KEKS_FILE", "VAULT_KEKS (or the matching _FILE variable) must be set"),
        ("VAULT_INDEX_KEY", "VAULT_INDEX_KEY (or the matching _FILE variable) must be set"),
        ("ALLOWED_HOSTS", "ALLOWED_HOSTS must name the site's host(s)"),
        ("VAULT_SITE_URL", "VAULT_SITE_URL must be the site's public https:// URL"),
        ("CACHE_URL", "CACHE_URL must be a shared redis:// cache"),
    ],
)
def test_production_refuses_to_start_without_its_secrets(production_env, unset, message):
    del production_env[unset]
    result = manage("check", env=production_env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("key_file", "message"),
    [
        ('{"format": "vault-keys/1", "active_kek": "k", "keks": {"k": "c2hvcnQ="}}', "must be 32 bytes, got 5"),
        ("not json", "not valid JSON"),
    ],
)
def test_production_refuses_malformed_keys(production_env, tmp_path, key_file, message):
    bad = tmp_path / "bad-keys.json"
    bad.write_text(key_file)
    result = manage("check", env={**production_env, "VAULT_KEKS_FILE": str(bad)})
    assert result.returncode != 0
    assert message in result.stderr


def test_wsgi_startup_fails_without_usable_keys(production_env, tmp_path):
    env = {**production_env, "VAULT_KEKS_FILE": str(tmp_path / "missing.json")}
    result = subprocess.run(
        [sys.executable, "-c", "import config.wsgi"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "does not exist; `manage.py vault_keys init` creates one" in result.stderr


def test_production_refuses_debug(production_env):
    result = manage("check", env={**production_env, "DJANGO_DEBUG": "true"})
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be off" in result.stderr


def test_bad_value_is_named_at_startup():
    result = manage("check", env={"DATABASE_CONN_MAX_AGE": "forever"})
    assert result.returncode != 0
    assert "DATABASE_CONN_MAX_AGE must be an integer" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("VAULT_KEY_EPOCH_DAYS", "0", "VAULT_KEY_EPOCH_DAYS must be at least 1"),
        ("VAULT_BACKUP_RETENTION_DAYS", "a month", "VAULT_BACKUP_RETENTION_DAYS must be an integer"),
    ],
)
def test_key_epoch_settings_are_checked_at_startup(tmp_path, name, value, message):
    result = manage("check", env={"VAULT_VAR_DIR": str(tmp_path), name: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_development_needs_no_configuration(tmp_path):
    result = manage("check", env={"VAULT_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr


def test_production_refuses_a_per_process_cache_or_a_plain_http_site_url(production_env):
    result = manage("check", env={**production_env, "CACHE_URL": "locmem://"})
    assert result.returncode != 0 and "CACHE_URL must be a shared redis:// cache" in result.stderr
    result = manage("check", env={**production_env, "VAULT_SITE_URL": "http://vault.example.com"})
    assert result.returncode != 0 and "VAULT_SITE_URL must be the site's public https:// URL" in result.stderr


def test_development_site_url_follows_the_port(tmp_path):
    code = "import django; django.setup(); from django.conf import settings; print(settings.VAULT_SITE_URL)"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "VAULT_", "DATABASE_"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", "VAULT_VAR_DIR": str(tmp_path), "PORT": "8123"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "http://127.0.0.1:8123"
