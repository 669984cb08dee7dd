import pytest
from django.contrib.auth.models import Group

from staff.roles import ROLES
from tests.factories import UserFactory


@pytest.fixture
def member_of(db):
    """`member_of("Privacy officer")`: a staff member holding that role only (and the suite's
    TOTP authenticator, so a `force_login` session counts as MFA-verified)."""

    def make(role: str):
        assert role in ROLES, role
        user = UserFactory.create(staff=True, email=f"{role.lower().replace(' ', '-')}@staff.example")
        user.groups.add(Group.objects.get(name=role))
        return user

    return make
