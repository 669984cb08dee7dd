"""The staff admin shows the ledger and the projection read-only, and publishes policy versions
through the service (so a published text is never edited)."""

import pytest
from django.urls import reverse
from django.utils import timezone

from consent.models import ConsentEvent, ConsentState, Method, PolicyDraft, PolicyVersion
from consent.services import consent_grant
from tests.factories import UserFactory


@pytest.fixture
def admin_client(client, db):
    client.force_login(UserFactory(superuser=True))
    return client


@pytest.fixture
def event(alice, newsletter):
    return consent_grant(subject_id=alice.id, purpose="newsletter", method=Method.WEB_FORM)


@pytest.mark.parametrize("model", [ConsentEvent, ConsentState])
def test_the_ledger_and_projection_are_read_only(admin_client, event, model):
    row = model.objects.get()
    name = f"admin:consent_{model._meta.model_name}"
    assert admin_client.get(reverse(f"{name}_changelist")).status_code == 200
    page = admin_client.get(reverse(f"{name}_change", args=[row.pk]))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert admin_client.get(reverse(f"{name}_add")).status_code == 403
    assert admin_client.post(reverse(f"{name}_delete", args=[row.pk]), {"post": "yes"}).status_code == 403
    assert model.objects.count() == 1


def test_staff_find_a_subjects_events_by_exact_id_only(admin_client, event, alice):
    url = reverse("admin:consent_consentevent_changelist")
    assert str(event.pk).encode() in admin_client.get(url, {"q": str(alice.id)}).content
    assert str(event.pk).encode() not in admin_client.get(url, {"q": str(alice.id)[:8]}).content


def test_a_policy_version_is_published_from_a_draft_through_the_service(admin_client, newsletter):
    """Versions are published from drafts (tests/staff/test_policy_drafts.py) and never edited."""
    form = {"purpose": newsletter.pk, "label": "v2", "text": "New text.", "is_material": "on"}
    assert admin_client.post(reverse("admin:consent_policyversion_add"), form).status_code == 403
    assert admin_client.post(reverse("admin:consent_policydraft_add"), form).status_code == 302
    draft = PolicyDraft.objects.get()
    response = admin_client.post(reverse("admin:consent_policydraft_publish", args=[draft.pk]))
    assert response.status_code == 302, response.content
    version = PolicyVersion.objects.get(label="v2")
    assert version.is_material and version.effective_from <= timezone.now()

    # The same label again: the service's error, shown on the draft's field.
    response = admin_client.post(reverse("admin:consent_policydraft_add"), form)
    assert response.status_code == 200
    assert b"already has a version with this label" in response.content
    # A published version cannot be edited or deleted.
    change = reverse("admin:consent_policyversion_change", args=[version.pk])
    assert admin_client.post(change, form | {"text": "Edited."}).status_code == 403
    assert (
        admin_client.post(reverse("admin:consent_policyversion_delete", args=[version.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert PolicyVersion.objects.get(pk=version.pk).text == "New text."


def test_a_purposes_slug_and_legal_basis_are_fixed_once_made(admin_client, newsletter):
    page = admin_client.get(reverse("admin:consent_purpose_change", args=[newsletter.pk]))
    assert page.status_code == 200
    assert b'name="slug"' not in page.content
    assert b'name="legal_basis"' not in page.content
    assert b'name="name"' in page.content
    assert b'name="_save"' in page.content
