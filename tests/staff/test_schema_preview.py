"""A field definition change (and a deprecation) shows what it does to the stored values before
it is saved: counts only, nothing decrypted; the confirmed second step saves through the service."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from profiles.models import FieldDefinition, ProfileValue
from profiles.selectors import field_definition_change_effect
from tests.factories import UserFactory, fill
from tests.staff.conftest import admin_form_data, as_post, hidden_inputs
from vault.models import AuditEntry

pytestmark = pytest.mark.usefixtures("profile_schema")


@pytest.fixture
def editor(client, member_of):
    client.force_login(member_of("Schema editor"))
    return client


@pytest.fixture
def sizes(db):
    """Three people with a shoe size, one of them collected long ago."""
    people = [UserFactory.create() for _ in range(3)]
    for person in people:
        fill(person, shoe_size="42")
    old = ProfileValue.objects.filter(subject_id=people[0].pk, definition__key="shoe_size")
    old.update(collected_at=timezone.now() - timedelta(days=400))
    return people


def _change_url(key: str) -> str:
    return reverse("admin:profiles_fielddefinition_change", args=[FieldDefinition.objects.get(key=key).pk])


def test_the_effect_is_counted_without_decrypting(sizes, django_assert_max_num_queries):
    entries = AuditEntry.objects.count()
    with django_assert_max_num_queries(8):
        effect = field_definition_change_effect(
            key="shoe_size", changes={"retention_days": 365, "label": "Shoe size (EU)"}, purposes=["analytics"]
        )
    assert (effect.values, effect.people, effect.earlier_values) == (3, 3, 0)
    assert effect.changed == ["retention_days", "purposes"]  # the label is unchanged
    assert (effect.purposes_removed, effect.purposes_added) == (["personalization"], ["analytics"])
    assert (effect.retention_shortened, effect.retention_expired) == (3, 1)
    assert AuditEntry.objects.count() == entries  # nothing was read through the gate


def test_a_change_shows_its_effect_then_saves_once_confirmed(editor, sizes):
    url = _change_url("shoe_size")
    data = admin_form_data(editor.get(url)) | {"retention_days": "365", "searchable": "on", "_save": "Save"}
    data["purposes"] = []  # personalization removed
    before = FieldDefinition.objects.get(key="shoe_size")

    preview = editor.post(url, data)
    assert preview.status_code == 200
    html = preview.content.decode()
    assert "errorlist" not in html, re.findall(r"errorlist[^>]*>(.*?)</ul>", html, re.S)
    assert "affects <strong>3</strong> stored values of <strong>3</strong> people" in html
    assert "Purposes removed: personalization" in html
    assert "3 values will expire sooner; 1 of them is already past the new period" in html
    assert "3 values will be re-indexed" in html
    unchanged = FieldDefinition.objects.get(key="shoe_size")
    assert (unchanged.version, unchanged.retention_days) == (before.version, before.retention_days)
    assert not AuditEntry.objects.filter(action="schema.field_update").exists()

    # The confirmation carries the same form: posting it saves through the service.
    carried = as_post(hidden_inputs(html))
    assert carried["_confirmed"] == ["1"]
    saved = editor.post(url, carried | {"_save": "Yes"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    after = FieldDefinition.objects.get(key="shoe_size")
    assert (after.version, after.retention_days, after.searchable) == (before.version + 1, 365, True)
    assert list(after.purposes.all()) == []
    assert AuditEntry.objects.filter(action="schema.field_update", fields=["shoe_size"]).count() == 1


def test_an_invalid_change_shows_its_errors_not_a_preview(editor, sizes):
    url = _change_url("shoe_size")
    data = admin_form_data(editor.get(url)) | {"retention_days": "0", "_save": "Save"}
    response = editor.post(url, data)
    assert response.status_code == 200
    assert b"stored value" not in response.content
    assert b"at least one day" in response.content


def test_an_auditor_cannot_change_or_deprecate(client, member_of, sizes):
    client.force_login(member_of("Auditor"))
    url = _change_url("shoe_size")
    data = admin_form_data(client.get(url)) | {"retention_days": "365", "_save": "Save"}
    assert client.post(url, data).status_code == 403
    changelist = reverse("admin:profiles_fielddefinition_changelist")
    pk = str(FieldDefinition.objects.get(key="shoe_size").pk)
    client.post(changelist, {"action": "deprecate", "_selected_action": [pk], "post": "yes"})
    assert FieldDefinition.objects.get(key="shoe_size").deprecated_at is None


def test_deprecating_shows_what_it_affects_first(editor, sizes):
    changelist = reverse("admin:profiles_fielddefinition_changelist")
    pk = str(FieldDefinition.objects.get(key="shoe_size").pk)
    preview = editor.post(changelist, {"action": "deprecate", "_selected_action": [pk], "index": "0"})
    assert preview.status_code == 200
    html = preview.content.decode()
    assert "affects <strong>3</strong> stored values of <strong>3</strong> people" in html
    assert "Deprecated: the field takes no new values" in html
    assert FieldDefinition.objects.get(pk=pk).deprecated_at is None

    done = editor.post(changelist, as_post(hidden_inputs(html)))
    assert done.status_code == 302
    assert FieldDefinition.objects.get(pk=pk).deprecated_at is not None
    assert AuditEntry.objects.filter(action="schema.field_deprecate", fields=["shoe_size"]).count() == 1
