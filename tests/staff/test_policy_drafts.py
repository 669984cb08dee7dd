"""Policy texts go from draft to published: drafts are edited freely by the privacy officer;
publishing (consent.add_policyversion) shows, for a material change, how many current grants
will need renewal, then publishes through the service, which audits it."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from consent.models import Method, PolicyDraft, PolicyVersion
from consent.selectors import consent_renewals_if_material
from consent.services import consent_withdraw, policy_version_publish
from tests.factories import PurposeFactory, UserFactory, grant
from vault.models import AuditEntry

pytestmark = pytest.mark.usefixtures("profile_schema")


@pytest.fixture
def officer(member_of):
    return member_of("Privacy officer")


@pytest.fixture
def purpose(db):
    """A consent purpose with v1 in force, granted by three people, one of whom withdrew."""
    made = PurposeFactory.create(slug="newsletter-test")
    people = [UserFactory.create() for _ in range(3)]
    for person in people:
        grant(person, made.slug)
    consent_withdraw(subject_id=people[2].pk, purpose=made.slug, method=Method.WEB_FORM)
    return made


def _draft(purpose, **attrs) -> PolicyDraft:
    return PolicyDraft.objects.create(purpose=purpose, label="v2", text="We now write weekly.", **attrs)


def test_renewals_count_current_grants_only(purpose):
    assert consent_renewals_if_material(purpose=purpose.slug) == 2  # the withdrawal is no grant
    policy_version_publish(purpose=purpose.slug, label="v2", text="Material.", is_material=True)
    # Both grants already wait for renewal: a further material change adds none.
    assert consent_renewals_if_material(purpose=purpose.slug) == 0
    grant(UserFactory.create(), purpose.slug)  # to v2: a further material change would need it renewed
    assert consent_renewals_if_material(purpose=purpose.slug) == 1
    later = timezone.now() + timedelta(days=1)
    assert consent_renewals_if_material(purpose=purpose.slug, effective_from=later) == 1
    earlier = timezone.now() - timedelta(days=1)  # before v2 took effect: its grants are not older
    assert consent_renewals_if_material(purpose=purpose.slug, effective_from=earlier) == 0


def test_publication_is_audited_by_the_service(purpose):
    policy_version_publish(purpose=purpose.slug, label="v2", text="Reworded.")
    entry = AuditEntry.objects.filter(action="policy.publish").last()  # v1 was the first
    assert (entry.actor_type, entry.actor_id, entry.purpose) == ("system", "consent.policies", purpose.slug)


def test_the_privacy_officer_writes_and_edits_a_draft(client, officer, purpose):
    client.force_login(officer)
    add = reverse("admin:consent_policydraft_add")
    form = {"purpose": purpose.pk, "label": "v2", "text": "First wording.", "is_material": "on"}
    assert client.post(add, form).status_code == 302
    draft = PolicyDraft.objects.get()
    assert (draft.created_by, draft.is_published) == (str(officer.pk), False)
    change = reverse("admin:consent_policydraft_change", args=[draft.pk])
    page = client.get(change)
    assert reverse("admin:consent_policydraft_publish", args=[draft.pk]).encode() in page.content
    assert client.post(change, form | {"text": "Second wording."}).status_code == 302
    assert PolicyDraft.objects.get().text == "Second wording."
    # What publishing would refuse is said on the draft's field already.
    page = client.post(add, form | {"label": "v1"})
    assert page.status_code == 200
    assert b"already has a version with this label" in page.content
    assert not PolicyVersion.objects.filter(label="v2").exists()  # a draft publishes nothing


def test_publishing_a_material_change_shows_the_renewals_then_publishes(client, officer, purpose):
    draft = _draft(purpose, is_material=True)
    client.force_login(officer)
    url = reverse("admin:consent_policydraft_publish", args=[draft.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert "<strong>2</strong> current grants will need renewal" in page.content.decode()
    assert not PolicyVersion.objects.filter(label="v2").exists()

    response = client.post(url)
    assert response.status_code == 302
    version = PolicyVersion.objects.get(purpose=purpose, label="v2")
    assert version.is_material and version.text == "We now write weekly."
    draft.refresh_from_db()
    assert draft.published == version
    entry = AuditEntry.objects.filter(action="policy.publish").last()
    assert (entry.actor_type, entry.actor_id, entry.purpose) == ("staff", str(officer.pk), purpose.slug)
    assert entry.fields == [f"consent.policyversion.id_{version.pk}", "is_material"]
    assert consent_renewals_if_material(purpose=purpose.slug) == 0

    # Published: read-only, and not published twice.
    change = reverse("admin:consent_policydraft_change", args=[draft.pk])
    assert b'name="_save"' not in client.get(change).content
    edit = {"purpose": purpose.pk, "label": "v2", "text": "Edited.", "is_material": "on"}
    assert client.post(change, edit).status_code == 403
    assert client.post(url).status_code == 302
    assert PolicyVersion.objects.filter(purpose=purpose).count() == 2
    assert PolicyDraft.objects.get().text == "We now write weekly."


def test_a_draft_the_service_refuses_is_not_published(client, officer, purpose):
    draft = _draft(purpose)
    policy_version_publish(purpose=purpose.slug, label="v2", text="Someone was quicker.")
    client.force_login(officer)
    response = client.post(reverse("admin:consent_policydraft_publish", args=[draft.pk]), follow=True)
    assert b"already has a version with this label" in response.content
    assert not PolicyDraft.objects.get().is_published


@pytest.mark.parametrize("role", ["Marketer", "Schema editor", "Auditor", "Support agent"])
def test_only_those_who_may_publish_can(client, member_of, role, purpose):
    draft = _draft(purpose, is_material=True)
    client.force_login(member_of(role))
    url = reverse("admin:consent_policydraft_publish", args=[draft.pk])
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
    assert client.get(reverse("admin:consent_policydraft_add")).status_code == 403
    assert not PolicyDraft.objects.get().is_published


def test_versions_are_no_longer_added_directly(client, officer, purpose):
    client.force_login(officer)
    form = {"purpose": purpose.pk, "label": "v2", "text": "New text.", "is_material": "on"}
    assert client.post(reverse("admin:consent_policyversion_add"), form).status_code == 403
    assert not PolicyVersion.objects.filter(label="v2").exists()
