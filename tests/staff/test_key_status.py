"""The key status console: KEKs by id with the current one marked, data keys per KEK, rotation
progress and the epochs; never key material; only for those holding staff.view_key_status."""

import json
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse

from vault.crypto import data_keys_create_many, data_keys_rewrap, key_scope
from vault.keys import get_provider
from vault.selectors import key_status

URL = "admin:staff_key_status"


@pytest.fixture
def keys(db):
    """Four people's profile data keys under the first KEK, then a new KEK, not yet rewrapped."""
    first = get_provider().active_kek_id()
    with key_scope():
        data_keys_create_many([uuid.uuid4() for _ in range(4)], "profile")
    second = get_provider().add_kek()
    with key_scope():
        data_keys_create_many([uuid.uuid4()], "profile")  # made under the new one
    return first, second


def test_the_status_counts_keys_per_kek_and_what_is_left_to_rewrap(keys, settings):
    first, second = keys
    status = key_status()
    assert status.active_kek == second
    assert [(k.kek_id, k.active, k.data_keys) for k in status.keks] == [(second, True, 1), (first, False, 4)]
    assert (status.data_keys, status.pending_rewrap, status.rotation_percent) == (5, 4, 20)
    assert status.data_keys_by_class == {"profile": 5}
    old = status.keks[1]
    assert old.superseded is not None
    assert old.destroy_after - old.superseded == timedelta(days=settings.VAULT_BACKUP_RETENTION_DAYS)
    assert status.manages_epochs and status.next_epoch_due > status.active_since

    data_keys_rewrap()
    status = key_status()
    assert (status.pending_rewrap, status.rotation_percent) == (0, 100)
    assert [(k.kek_id, k.data_keys) for k in status.keks] == [(second, 5), (first, 0)]


@pytest.mark.parametrize("role", ["Key administrator", "Auditor"])
def test_the_page_shows_ids_and_counts_never_key_material(client, member_of, role, keys, vault_keys):
    first, second = keys
    client.force_login(member_of(role))
    response = client.get(reverse(URL))
    assert response.status_code == 200
    html = response.content.decode()
    assert first in html and second in html
    assert "<strong>4</strong> data keys" in html
    material = json.loads(vault_keys.read_text())
    for secret in [*material["keks"].values(), material["audit_signing_key"], material.get("index_key", "")]:
        if secret:
            assert secret not in html
    assert reverse("admin:staff_audit_verify") in html  # both roles may verify the audit chain


@pytest.mark.parametrize("role", ["Privacy officer", "Support agent", "Marketer", "Schema editor"])
def test_others_cannot_see_it(client, member_of, role, keys):
    client.force_login(member_of(role))
    assert client.get(reverse(URL)).status_code == 403
