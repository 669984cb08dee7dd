"""Fixtures for the whole suite; the test data they make comes from tests/factories.py.

No test reaches beyond this machine. pytest-socket (`--allow-hosts` in pyproject.toml) lets a
socket connect only to loopback, which the tests of real services need (the Redis or RabbitMQ
broker, the live server and the browser, the OpenID provider, gunicorn): a connection to any other
address is refused before a packet leaves. (PostgreSQL's connection is libpq's own, in C, out of
pytest-socket's sight; psycopg looks its host name up in Python, which a loopback name passes.)
pytest-socket does not guard name lookups, and a lookup of any other name would itself go out to
DNS, so `_no_name_lookups` resolves only loopback names and literal addresses. Unix sockets stay
open (`--allow-unix-socket`): they never leave the machine. tests/test_network.py checks this.
"""

import ipaddress
import json
import socket
import uuid

import pytest
from pytest_socket import SocketBlockedError

from accounts.models import User
from tests.factories import AUDIT_TABLES, UserFactory, add_totp, set_audit_triggers
from vault.fields import seal
from vault.keys import new_key_set, write_key_file

LOOPBACK_NAMES = {"localhost"}


def _loopback_only(lookup):
    def guarded(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name and name not in LOOPBACK_NAMES:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                raise SocketBlockedError(f"A test tried to look up {name!r}: only loopback names resolve.") from None
        return lookup(host, *args, **kwargs)

    return guarded


@pytest.fixture(autouse=True)
def _no_name_lookups(monkeypatch):
    """Look-ups of outside names fail at once, instead of querying DNS (see the docstring above)."""
    monkeypatch.setattr(socket, "getaddrinfo", _loopback_only(socket.getaddrinfo))
    monkeypatch.setattr(socket, "gethostbyname", _loopback_only(socket.gethostbyname))


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def _session_key_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "vault-keys.json"
    write_key_file(path, new_key_set(), overwrite=False)
    return path


@pytest.fixture(autouse=True)
def vault_keys(settings, _session_key_file, tmp_path):
    """Each test gets its own copy of a key file (tests may rotate it), never the developer's."""
    path = tmp_path / "vault-keys.json"
    path.write_text(_session_key_file.read_text())
    settings.VAULT_KEKS = ""
    settings.VAULT_INDEX_KEY = ""
    settings.VAULT_KEKS_FILE = str(path)
    return path


@pytest.fixture(autouse=True)
def erasure_journal(settings, tmp_path):
    """Each test journals erasures to a file of its own, never to the developer's var/."""
    path = tmp_path / "erasure-journal.jsonl"
    settings.VAULT_ERASURE_JOURNAL = str(path)
    return path


@pytest.fixture
def key_set(vault_keys) -> dict:
    return json.loads(vault_keys.read_text())


@pytest.fixture(scope="session")
def sealed_table(django_db_setup, django_db_blocker):
    """The table of tests.vault.sealed_model.SealedThing, created once."""
    from django.db import connection

    from tests.vault.sealed_model import SealedThing

    with django_db_blocker.unblock(), connection.schema_editor() as editor:
        editor.create_model(SealedThing)
    return SealedThing


@pytest.fixture
def thing(sealed_table, db):
    """Make a SealedThing with `value` sealed in `field`, read back from the database."""

    def make(value, *, subject_id=None, field="value"):
        row = sealed_table(subject_id=subject_id or uuid.uuid4())
        seal(row, field, value)
        row.save()
        return sealed_table.objects.get(pk=row.pk)

    return make


# The personas of the permission tests (CONVENTIONS.md): two people and a staff member.
@pytest.fixture
def alice(db) -> User:
    return UserFactory.create(email="alice@example.com")


@pytest.fixture
def bob(db) -> User:
    return UserFactory.create(email="bob@example.com")


@pytest.fixture
def staff(db) -> User:
    return UserFactory.create(email="staff@example.com", staff=True)


class StaffMfa:
    """Staff must sign in with MFA (accounts/mfa.py). In tests every staff account made gets a
    TOTP authenticator, and every staff login (`force_login`, `admin_client`) is recorded as having
    passed it, as allauth's login would after the code. A test of the rule itself sets
    `staff_mfa.auto = False` first (or deletes the authenticator)."""

    def __init__(self) -> None:
        self.auto = True

    def give_authenticator(self, sender, instance, created, **kwargs):
        if self.auto and created and instance.is_staff:
            add_totp(instance)

    def record_login(self, sender, request, user, **kwargs):
        from allauth.account.internal.flows.login import record_authentication
        from allauth.mfa.models import Authenticator

        if self.auto and user.is_staff:
            totp = Authenticator.objects.filter(user_id=user.pk, type=Authenticator.Type.TOTP).first()
            if totp is not None:
                record_authentication(request, user, "mfa", id=totp.pk, type=totp.type)


@pytest.fixture(autouse=True)
def staff_mfa():
    from django.contrib.auth.signals import user_logged_in
    from django.db.models.signals import post_save

    hooks = StaffMfa()
    post_save.connect(hooks.give_authenticator, sender=User, dispatch_uid="tests.staff_mfa.authenticator")
    user_logged_in.connect(hooks.record_login, dispatch_uid="tests.staff_mfa.login")
    yield hooks
    post_save.disconnect(sender=User, dispatch_uid="tests.staff_mfa.authenticator")
    user_logged_in.disconnect(dispatch_uid="tests.staff_mfa.login")


@pytest.fixture
def committed_db(transactional_db):
    """Writes that really commit (threads, a live server). transactional_db empties every table
    afterwards with one TRUNCATE, which the audit log's trigger refuses on a non-empty log: this
    teardown (which runs before that flush) empties the log with the trigger lifted for a moment."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    set_audit_triggers(enabled=False)
    try:
        with connection.cursor() as cursor:
            for table in AUDIT_TABLES:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed table names)
    finally:
        set_audit_triggers(enabled=True)


@pytest.fixture
def default_purposes(db):
    """The purposes the data migration installs, installed again: a transactional test before
    this one may have flushed every table, data migrations' rows included."""
    import importlib
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("consent.migrations.0002_default_purposes")
    migration.install(apps, SimpleNamespace(connection=connection))


@pytest.fixture
def profile_schema(default_purposes):
    """The rights purpose and the default profile schema, installed again (a transactional test
    before this one may have flushed the data migrations' rows)."""
    import importlib
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connection

    for name in ("consent.migrations.0006_data_subject_rights_purpose", "profiles.migrations.0002_default_schema"):
        importlib.import_module(name).install(apps, SimpleNamespace(connection=connection))
