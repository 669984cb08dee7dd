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
