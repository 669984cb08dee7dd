"""The roles are installed by migration, each holding exactly the permissions staff/roles.py lists."""

import pytest
from django.contrib.auth.models import Group

from staff.roles import ROLES


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_role_is_a_group_with_exactly_its_permissions(role):
    group = Group.objects.get(name=role)
    held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
    assert held == set(ROLES[role])
