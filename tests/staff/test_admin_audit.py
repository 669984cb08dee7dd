"""Everything staff change through the admin is in the tamper-evident audit log: one entry per
addition, change, deletion and action run, naming the staff member, the object and the changed
fields' names, never a value or an e-mail address; the admin's own log and "Recent actions" do
not show e-mail addresses either."""

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from consent.models import PolicyDraft, PolicyVersion, Purpose
from consent.services import policy_version_publish
from partners.models import PartnerClient, PartnerCredential
from partners.services import partner_credential_create
from profiles.gate import Actor
from profiles.models import FieldDefinition, RecordKind
from staff.audit import audited_admin, object_display
from staff.roles import AUDITOR, PRIVACY_OFFICER, SCHEMA_EDITOR, SUPPORT_AGENT
from tests.factories import PurposeFactory, UserFactory
from tests.staff.forms import admin_form_data
from vault.audit import audit_verify
from vault.audit.selectors import audit_entries_about
from vault.models import AuditEntry, AuditPseudonym

pytestmark = pytest.mark.django_db


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("seq"))


def assert_clean(entry: AuditEntry, *secrets: str) -> None:
    """No e-mail address (nor any of `secrets`) anywhere in the entry."""
    columns = [entry.actor_id, entry.action, entry.purpose, entry.request_id, *entry.fields]
    for column in columns:
        assert "@" not in column
        for secret in secrets:
            assert secret not in column


def test_a_role_given_on_a_users_page_is_audited_with_groups_among_the_changed_fields(client, member_of):
    officer = member_of(PRIVACY_OFFICER)
    agent = UserFactory(staff=True, email="new.agent@staff.example")
    client.force_login(officer)
    url = reverse("admin:accounts_user_change", args=[agent.pk])
    data = admin_form_data(client.get(url))
    data["groups"] = [str(Group.objects.get(name=SUPPORT_AGENT).pk)]

    response = client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert list(agent.groups.values_list("name", flat=True)) == [SUPPORT_AGENT]
    (entry,) = entries("staff.change")
    assert (entry.actor_type, entry.actor_id) == ("staff", str(officer.pk))
    assert entry.fields == ["accounts.user", "groups"]
    # The login is named through the person's pseudonym, never by its id (their subject id).
    assert entry.subject_pseudonym == AuditPseudonym.objects.get(subject_id=agent.pk).pseudonym
    assert_clean(entry, str(agent.pk), agent.email, SUPPORT_AGENT)
    # The person sees it among "who accessed my data"; the staff member is not named.
    seen = audit_entries_about(subject_id=agent.pk).object_list[0]
    assert (seen.action, seen.fields, seen.actor_type, seen.actor_name) == (
        "staff.change",
        ["accounts.user", "groups"],
        "staff",
        "",
    )
    assert LogEntry.objects.get().object_repr == str(agent.pk)
    assert audit_verify().ok


def test_only_a_superuser_can_make_a_superuser_or_give_single_permissions(client, member_of):
    officer = member_of(PRIVACY_OFFICER)
    client.force_login(officer)
    url = reverse("admin:accounts_user_change", args=[officer.pk])
    data = admin_form_data(client.get(url))
    assert "is_superuser" not in data and "user_permissions" not in data
    data |= {"is_superuser": "on", "user_permissions": [str(Permission.objects.get(codename="delete_user").pk)]}

    client.post(url, data)

    officer.refresh_from_db()
    assert not officer.is_superuser
    assert not officer.user_permissions.exists()


def test_adding_a_record_kind_is_audited_with_the_fields_set(client, member_of, default_purposes):
    editor = member_of(SCHEMA_EDITOR)
    client.force_login(editor)
    purpose = Purpose.objects.get(slug="account-management")
    form = {
        "slug": "store-visit",
        "name": "Store visit",
        "shape": "event",
        "category": "behavioral",
        "purpose": str(purpose.pk),
        "retention_days": "365",
        "allowed_sources": '["staff"]',
    }

    response = client.post(reverse("admin:profiles_recordkind_add"), form)

    assert response.status_code == 302, response.context["adminform"].form.errors
    kind = RecordKind.objects.get(slug="store-visit")
    (entry,) = entries("staff.add")
    assert (entry.actor_type, entry.actor_id) == ("staff", str(editor.pk))
    assert entry.fields[0] == f"profiles.recordkind.id_{kind.pk}"
    assert {"slug", "name", "shape", "category", "purpose", "retention_days"} <= set(entry.fields[1:])
    assert entry.subject_pseudonym is None
    assert_clean(entry, "Store visit", "store-visit")


def test_changing_a_purpose_names_the_fields_changed_only(client, member_of):
    officer = member_of(PRIVACY_OFFICER)
    purpose = PurposeFactory(slug="newsletter", name="Newsletter")
    client.force_login(officer)
    url = reverse("admin:consent_purpose_change", args=[purpose.pk])
    data = admin_form_data(client.get(url)) | {"name": "Weekly letter"}

    response = client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    (entry,) = entries("staff.change")
    assert entry.fields == [f"consent.purpose.id_{purpose.pk}", "name"]
    assert_clean(entry, "Weekly letter", "Newsletter")


def test_a_policy_drafted_and_published_in_the_admin_is_audited_as_staff_addition_and_publication(client, member_of):
    officer = member_of(PRIVACY_OFFICER)
    purpose = PurposeFactory(slug="newsletter")
    client.force_login(officer)
    form = {"purpose": purpose.pk, "label": "v2", "text": "New text about nobody.", "is_material": "on"}

    assert client.post(reverse("admin:consent_policydraft_add"), form).status_code == 302
    draft = PolicyDraft.objects.get(label="v2")
    assert client.post(reverse("admin:consent_policydraft_publish", args=[draft.pk])).status_code == 302

    version = PolicyVersion.objects.get(label="v2")
    published = entries("policy.publish")[-1]
    assert (published.actor_type, published.actor_id) == ("staff", str(officer.pk))
    assert published.purpose == "newsletter"
    assert published.fields == [f"consent.policyversion.id_{version.pk}", "is_material"]
    (added,) = entries("staff.add")
    assert added.fields[0] == f"consent.policydraft.id_{draft.pk.hex}"
    assert_clean(published, "New text")
    assert_clean(added, "New text")


def test_publishing_outside_the_admin_is_audited_too():
    purpose = PurposeFactory(slug="newsletter", published=False)
    version = policy_version_publish(purpose=purpose.slug, label="v1", text="Text.")
    (entry,) = entries("policy.publish")
    assert (entry.actor_type, entry.actor_id, entry.purpose) == ("system", "consent.policies", "newsletter")
    assert entry.fields == [f"consent.policyversion.id_{version.pk}"]


def test_an_action_is_audited_with_its_name_model_and_count(client, member_of):
    officer = member_of(PRIVACY_OFFICER)
    shops = [PartnerClient.objects.create(slug=f"shop-{n}", name=f"Shop {n}") for n in range(3)]
    for shop in shops:
        partner_credential_create(client=shop, name="main", actor=Actor.system("test"))
    client.force_login(officer)
    changelist = reverse("admin:partners_partnerclient_changelist")

    response = client.post(
        changelist, {"action": "revoke_all_credentials", "_selected_action": [str(s.pk) for s in shops[:2]]}
    )

    assert response.status_code == 302
    assert PartnerCredential.objects.filter(revoked=True).count() == 2
    (entry,) = entries("staff.action")
    assert (entry.actor_type, entry.actor_id) == ("staff", str(officer.pk))
    assert entry.fields == ["partners.partnerclient", "revoke_all_credentials", "count_2"]
    # The service audits each revocation on its own, by client.
    assert len(entries("partners.credential_revoke")) == 2


@pytest.mark.usefixtures("profile_schema")
def test_an_action_asking_for_confirmation_is_audited_only_once_confirmed(client, member_of):
    """A deprecation first shows what it would affect; opening that page changes nothing."""
    definition = FieldDefinition.objects.get(key="city")
    client.force_login(member_of(SCHEMA_EDITOR))
    changelist = reverse("admin:profiles_fielddefinition_changelist")
    chosen = {"action": "deprecate", "_selected_action": [str(definition.pk)]}

    assert client.post(changelist, chosen).status_code == 200
    assert entries("staff.action") == []
    assert client.post(changelist, chosen | {"post": "yes"}).status_code == 302

    definition.refresh_from_db()
    assert definition.deprecated_at is not None
    (entry,) = entries("staff.action")
    assert entry.fields == ["profiles.fielddefinition", "deprecate", "count_1"]


def test_an_action_that_declares_no_permission_needs_the_change_permission(client, member_of):
    """Django offers such actions to anyone who may see the list; the staff site does not."""
    shop = PartnerClient.objects.create(slug="shop", name="Shop")
    partner_credential_create(client=shop, name="main", actor=Actor.system("test"))
    client.force_login(member_of(AUDITOR))
    changelist = reverse("admin:partners_partnerclient_changelist")
    assert b"revoke_all_credentials" not in client.get(changelist).content

    client.post(changelist, {"action": "revoke_all_credentials", "_selected_action": [str(shop.pk)]})

    assert not PartnerCredential.objects.filter(revoked=True).exists()
    assert not entries("staff.action")


def test_delete_selected_is_audited_once_confirmed_with_one_entry_per_object(client):
    root = UserFactory(superuser=True)
    temp = [Group.objects.create(name=f"Temporary {n}") for n in range(2)]
    client.force_login(root)
    changelist = reverse("admin:auth_group_changelist")
    chosen = {"action": "delete_selected", "_selected_action": [str(g.pk) for g in temp]}

    confirm = client.post(changelist, chosen)
    assert confirm.status_code == 200  # "are you sure?": nothing deleted, nothing recorded
    assert not entries("staff.action") and Group.objects.filter(pk__in=[g.pk for g in temp]).count() == 2

    assert client.post(changelist, chosen | {"post": "yes"}).status_code == 302

    assert not Group.objects.filter(pk__in=[g.pk for g in temp]).exists()
    (action,) = entries("staff.action")
    assert action.fields == ["auth.group", "delete_selected", "count_2"]
    assert sorted(e.fields[0] for e in entries("staff.delete")) == sorted(f"auth.group.id_{g.pk}" for g in temp)
    assert LogEntry.objects.filter(action_flag=3).count() == 2


def test_a_deletion_on_its_own_page_is_audited(client):
    root = UserFactory(superuser=True)
    purpose = PurposeFactory(slug="newsletter")
    later = policy_version_publish(
        purpose=purpose.slug, label="v2", text="Later.", effective_from=timezone.now() + timedelta(days=3)
    )
    client.force_login(root)

    response = client.post(reverse("admin:consent_policyversion_delete", args=[later.pk]), {"post": "yes"})

    assert response.status_code == 302
    (entry,) = entries("staff.delete")
    assert (entry.actor_id, entry.fields) == (str(root.pk), [f"consent.policyversion.id_{later.pk}"])


def test_group_permissions_changed_are_audited(client):
    root = UserFactory(superuser=True)
    group = Group.objects.get(name=AUDITOR)
    client.force_login(root)
    url = reverse("admin:auth_group_change", args=[group.pk])
    data = admin_form_data(client.get(url))
    data["permissions"] = [*data["permissions"], str(Permission.objects.get(codename="view_user").pk)]

    assert client.post(url, data).status_code == 302

    (entry,) = entries("staff.change")
    assert entry.fields == [f"auth.group.id_{group.pk}", "permissions"]


def test_the_admins_own_log_and_recent_actions_show_no_email_address(client):
    root = UserFactory(superuser=True)
    person = UserFactory(email="someone.private@example.org")
    address = EmailAddress.objects.create(user=person, email=person.email, verified=False, primary=True)
    client.force_login(root)
    url = reverse("admin:account_emailaddress_change", args=[address.pk])
    data = admin_form_data(client.get(url)) | {"verified": "on"}

    assert client.post(url, data).status_code == 302

    log = LogEntry.objects.get()
    assert log.object_repr == f"email address {address.pk}"
    assert "someone.private" not in client.get(reverse("admin:index")).content.decode()
    (entry,) = entries("staff.change")
    assert entry.fields == [f"account.emailaddress.id_{address.pk}", "verified"]
    # About the person: in their own trail, through their pseudonym.
    assert entry.subject_pseudonym == AuditPseudonym.objects.get(subject_id=person.pk).pseudonym
    assert_clean(entry, "someone.private")


def test_every_registered_admin_is_audited_and_one_registered_later_too():
    from django.contrib import admin

    from staff.audit import StaffAuditMixin

    assert all(isinstance(model_admin, StaffAuditMixin) for model_admin in admin.site._registry.values())
    assert issubclass(audited_admin(admin.ModelAdmin), StaffAuditMixin)


def test_objects_of_apps_not_vetted_are_shown_by_model_and_id():
    person = UserFactory(email="who@example.org")
    address = EmailAddress.objects.create(user=person, email=person.email)
    assert object_display(address) == f"email address {address.pk}"
    assert object_display(person) == str(person.pk)
    assert object_display(Group.objects.get(name=AUDITOR)) == AUDITOR
