from types import SimpleNamespace

import pytest
from allauth.account.internal.flows.login import record_authentication


def reauthenticate(client, user, method: str = "password") -> None:
    """What allauth's re-authentication leaves in the session: a fresh record of the method."""
    session = client.session
    record_authentication(SimpleNamespace(session=session), user, method, reauthenticated=True)
    session.save()


@pytest.fixture
def signed_in(client):
    """A client signed in as `person` who just re-authenticated."""

    def sign_in(person, *, fresh: bool = True):
        client.force_login(person)
        if fresh:
            reauthenticate(client, person)
        return client

    return sign_in


@pytest.fixture
def rights_staff(staff):
    """A staff member holding the permission to act on requests."""
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="handle_rightsrequest"))
    return staff


@pytest.fixture(autouse=True)
def eager_tasks():
    """The rights jobs (export build, erasure, purge) run in the test's process, whatever broker
    the run has (tests/vault/test_celery.py covers the round trip through a real broker)."""
    from config.celery import app

    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    app.conf.update(task_always_eager=before[0], task_eager_propagates=before[1])
