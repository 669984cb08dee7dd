"""docs/admin.md lists each role with exactly the permissions staff/roles.py gives it."""

import re
from pathlib import Path

import pytest

from staff.roles import _REGISTERS, ROLES

DOC = Path(__file__).resolve().parents[2] / "docs" / "admin.md"


def documented() -> dict[str, set[str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in ROLES:
            perms = set(re.findall(r"`([a-z_]+\.[a-z_]+)`", cells[2]))
            if "the registers" in cells[2]:
                perms |= set(_REGISTERS)
            rows[cells[0]] = perms
    return rows


@pytest.mark.parametrize("role", sorted(ROLES))
def test_the_roles_table_names_exactly_each_roles_permissions(role):
    assert documented().get(role) == set(ROLES[role])


def test_the_registers_are_spelled_out():
    text = DOC.read_text()
    assert all(f"`{permission}`" in text for permission in _REGISTERS)
