"""Data keys live in the `keystore` database when VAULT_KEYSTORE_DATABASE_URL is set.

Run in a subprocess with two real databases, migrated by `manage.py migrate` as an operator would.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sqlite3, sys, uuid
    import django
    django.setup()
    from django.db import connections
    from vault import crypto

    subject = uuid.uuid4()
    context = crypto.associated_data("test")
    ciphertext = crypto.encrypt(b"Ada", subject_id=subject, data_class="profile", context=context)
    assert crypto.decrypt(ciphertext, subject_id=subject, data_class="profile", context=context) == b"Ada"

    def tables(alias):
        return set(connections[alias].introspection.table_names())

    def count(alias):
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM vault_datakey")
            return cursor.fetchone()[0]

    assert "vault_datakey" in tables("keystore") and "vault_datakey" not in tables("default"), "keys only in keystore"
    assert "accounts_user" in tables("default") and "accounts_user" not in tables("keystore"), "data only in default"
    assert count("keystore") == 1
    crypto.subject_shred(subject)
    assert count("keystore") == 0
    try:
        crypto.decrypt(ciphertext, subject_id=subject, data_class="profile", context=context)
    except crypto.SubjectErased:
        print("OK")
    """
)


@pytest.mark.slow
def test_data_keys_are_routed_to_the_keystore_database(tmp_path, vault_keys):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "VAULT_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'main.sqlite3'}",
        VAULT_KEYSTORE_DATABASE_URL=f"sqlite:///{tmp_path / 'keystore.sqlite3'}",
        VAULT_KEKS_FILE=str(vault_keys),
        VAULT_VAR_DIR=str(tmp_path),
    )

    def run(*args):
        return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)

    run(sys.executable, "manage.py", "migrate", "--noinput")
    run(sys.executable, "manage.py", "migrate", "--noinput", "--database", "keystore")
    assert run(sys.executable, "-c", SCRIPT).stdout.strip() == "OK"
