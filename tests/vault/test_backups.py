"""Erasure reaches backups (docs/backups.md).

A dump of the vault's key tables is taken, someone is erased, and then:
- after the next key epoch and the backup retention, the old dump opens nobody's keys, while the
  live database still reads everyone not erased;
- the dump restored, `vault_erasure_replay` erases the person again, while others stay readable.

On PostgreSQL the dump is a real `pg_dump` of the test database, restored with `pg_restore`; on
SQLite (and as a second variant on PostgreSQL) the rows are copied out and back.
"""

import os
import subprocess
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Model

from vault.audit import audit_pseudonym_for
from vault.crypto import SubjectErased, key_epoch_advance
from vault.fields import unseal
from vault.keys import UnknownKek, get_provider
from vault.models import AuditPseudonym, DataKey, ErasedSubject
from vault.services import erasure_journal_replay, subject_keys_shred

DAY = timedelta(days=1)
# What a restore of the main database brings back of a person's keys and audit link.
KEY_MODELS: tuple[type[Model], ...] = (DataKey, ErasedSubject, AuditPseudonym)


class RowCopy:
    """The key tables' rows, copied out and written back (what a restore does to them)."""

    def __init__(self) -> None:
        self.rows = {model: list(model._default_manager.values()) for model in KEY_MODELS}

    def restore(self) -> None:
        for model in KEY_MODELS:
            model._default_manager.all().delete()
            model._default_manager.bulk_create(model(**row) for row in self.rows[model])


class PgDump:
    """A real `pg_dump` of the key tables of the test database, restored with `pg_restore`."""

    def __init__(self, path) -> None:
        self.path = path
        self._run("pg_dump", "--data-only", "--format=custom", *self._tables(), "-f", str(path), self._name())

    def restore(self) -> None:
        tables = ", ".join(model._meta.db_table for model in KEY_MODELS)
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {tables}")
        self._run("pg_restore", "--data-only", "-d", self._name(), str(self.path))

    @staticmethod
    def _name() -> str:
        return connection.settings_dict["NAME"]  # the test database

    @staticmethod
    def _run(program: str, *args: str) -> None:
        config = connection.settings_dict
        where = ["-h", config["HOST"] or "127.0.0.1", "-p", str(config["PORT"] or 5432), "-U", config["USER"]]
        env = {**os.environ, "PGPASSWORD": config.get("PASSWORD") or ""}
        done = subprocess.run(
            [program, *where, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr

    @staticmethod
    def _tables() -> list[str]:
        return [arg for model in KEY_MODELS for arg in ("-t", model._meta.db_table)]


@pytest.fixture(params=["pg_dump", "rows"])
def dump(request, committed_db, tmp_path):
    """Takes a dump: a real pg_dump on PostgreSQL (skipped on SQLite), or a copy of the rows."""
    if request.param == "pg_dump":
        if connection.vendor != "postgresql":
            pytest.skip("pg_dump needs PostgreSQL (set DATABASE_URL=postgres://...)")
        counter = iter(range(100))
        return lambda: PgDump(tmp_path / f"vault-{next(counter)}.dump")
    return RowCopy


@pytest.fixture
def people(thing, settings):
    settings.VAULT_KEY_EPOCH_DAYS = 30
    settings.VAULT_BACKUP_RETENTION_DAYS = 35
    return thing("Ada Lovelace", subject_id=uuid.uuid4()), thing("Grace Hopper", subject_id=uuid.uuid4())


def read(row):
    return unseal(row, "value", purpose="test")


def erase(row) -> None:
    subject_keys_shred(subject_id=row.subject_id, actor_type="system", actor_id="test")


def test_a_dump_from_before_an_erasure_opens_nothing_once_its_epoch_and_the_retention_passed(dump, people):
    erased, kept = people
    before_erasure = dump()
    erase(erased)
    start = get_provider().active_since()
    first = start + 31 * DAY

    key_epoch_advance(now=first)
    assert read(kept) == "Grace Hopper"
    with pytest.raises(SubjectErased):
        read(erased)
    # Within the retention the old KEK still exists: the old dump would still open the erased
    # person's key. (This is what the erasure journal's replay covers.)
    live = dump()
    before_erasure.restore()
    assert read(erased) == "Ada Lovelace"
    live.restore()

    report = key_epoch_advance(now=first + 36 * DAY)
    assert report.retired  # the KEK of the dump's time is destroyed
    assert read(kept) == "Grace Hopper"  # the live database never noticed
    with pytest.raises(SubjectErased):
        read(erased)

    before_erasure.restore()
    with pytest.raises(UnknownKek):
        read(erased)
    with pytest.raises(UnknownKek):
        read(kept)  # an old backup opens nobody: that is the point


def test_a_restored_dump_is_made_to_forget_again_by_the_replay(dump, people, erasure_journal, capsys):
    erased, kept = people
    audit_pseudonym_for(erased.subject_id)  # entries about them name it (as the gate's reads do)
    before_erasure = dump()
    erase(erased)
    assert erasure_journal.read_text().count(str(erased.subject_id)) == 1

    before_erasure.restore()
    assert read(erased) == "Ada Lovelace"  # the restore brought the person back
    assert AuditPseudonym.objects.filter(subject_id=erased.subject_id).exists()

    call_command("vault_erasure_replay")
    assert "1 subject(s)" in capsys.readouterr().out
    assert not DataKey.objects.filter(subject_id=erased.subject_id).exists()
    assert not AuditPseudonym.objects.filter(subject_id=erased.subject_id).exists()
    with pytest.raises(SubjectErased):
        read(erased)
    assert read(kept) == "Grace Hopper"
    assert erasure_journal_replay() == [erased.subject_id]  # idempotent
    assert read(kept) == "Grace Hopper"
