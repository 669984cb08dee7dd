"""The permission matrix: every role (and a staff member with none) against every admin page, every
admin action and every console, read from the site itself (`admin.site._registry`, CONSOLES), so
pages, actions and consoles merged later are covered without editing this file.

What a role may do is derived from its permissions in staff/roles.py by Django's rules (view or
change: the list, an object's page and its history; add: the add page; delete: the delete page;
an action: its declared permissions, or the change permission when it declares none, which is the
staff site's rule), within what the admin allows anyone at all (what a superuser gets: a
read-only admin has no add page for anybody). Allowed is the superuser's answer; refused is 403
(for an action: not offered, and not run). Spot checks by hand follow, to catch a wrong rule.
"""

import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import cached_property
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from allauth.usersessions.models import UserSession
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_permission_codename
from django.contrib.auth.models import Group
from django.db import models
from django.urls import reverse
from django.utils import timezone

from consent.models import ConsentEvent, ConsentState, Method, PolicyDraft, PolicyVersion, Purpose
from consent.services import consent_grant
from partners.models import PartnerClient, WebhookDelivery
from partners.services import partner_credential_create
from profiles.gate import Actor
from profiles.models import FieldDefinition, Merge, RecordKind
from profiles.services import profile_merge
from rights.models import RightsRequest
from staff.consoles import CONSOLES
from staff.roles import AUDITOR, MARKETER, PRIVACY_OFFICER, ROLES, SUPPORT_AGENT
from tests.factories import PurposeFactory, UserFactory, add_totp, fill, give_birth_date
from tests.staff.forms import admin_form_data
from vault.models import AuditEntry

NO_ROLE = "(staff, no role)"
PAGES = ("changelist", "add", "change", "delete", "history")
ADMINS: dict[Any, Any] = admin.site._registry
REGISTERED = sorted(ADMINS, key=lambda model: model._meta.label)

# Actions whose declared permission is not one of Django's four: the permission that grants it.
CUSTOM_ACTION_PERMISSIONS = {
    ("partners.webhookdelivery", "replay"): "partners.change_webhookdelivery",
    ("profiles.merge", "undo"): "profiles.change_merge",
}


class World:
    """One object of every registered model (made on first use), and what they need."""

    @cached_property
    def person(self) -> Any:
        person: Any = UserFactory(email="matrix.person@example.org")
        give_birth_date(person)
        fill(person, city="Delft")
        return person

    @cached_property
    def other(self) -> Any:
        return UserFactory(email="matrix.other@example.org")

    @cached_property
    def purpose(self) -> Purpose:
        purpose: Any = PurposeFactory(slug="newsletter")
        return purpose

    @cached_property
    def event(self) -> ConsentEvent:
        self.purpose  # noqa: B018
        return consent_grant(subject_id=self.person.pk, purpose="newsletter", method=Method.WEB_FORM)

    @cached_property
    def shop(self) -> PartnerClient:
        shop = PartnerClient.objects.create(slug="shop", name="Shop")
        partner_credential_create(client=shop, name="main", actor=Actor.system("test"))
        return shop

    @cached_property
    def app(self) -> SocialApp:
        return SocialApp.objects.create(provider="github", name="GitHub", client_id="id", secret="not-a-secret")

    @cached_property
    def social(self) -> SocialAccount:
        return SocialAccount.objects.create(user=self.person, provider="github", uid="matrix-uid-4242")

    def seed(self, model: type[models.Model]) -> models.Model:
        seeds: dict[str, Callable[[], models.Model | None]] = {
            "auth.group": lambda: Group.objects.create(name="Temporary"),
            "account.emailaddress": lambda: EmailAddress.objects.create(user=self.person, email=self.person.email),
            "socialaccount.socialapp": lambda: self.app,
            "socialaccount.socialaccount": lambda: self.social,
            "socialaccount.socialtoken": lambda: SocialToken.objects.create(
                app=self.app, account=self.social, token="not-a-token"
            ),
            "mfa.authenticator": lambda: add_totp(self.person),
            "usersessions.usersession": lambda: UserSession.objects.create(
                user=self.person, ip="192.0.2.1", session_key=uuid.uuid4().hex, user_agent="Matrix"
            ),
            "accounts.user": lambda: self.person,
            "consent.purpose": lambda: self.purpose,
            "consent.policyversion": lambda: PolicyVersion.objects.filter(purpose=self.purpose).first(),
            "consent.policydraft": lambda: PolicyDraft.objects.create(
                purpose=self.purpose, label="v9", text="A draft nobody has seen."
            ),
            "consent.consentevent": lambda: self.event,
            "consent.consentstate": lambda: (self.event, ConsentState.objects.get(subject_id=self.person.pk))[1],
            "profiles.fielddefinition": lambda: FieldDefinition.objects.order_by("key").first(),
            "profiles.recordkind": lambda: RecordKind.objects.order_by("slug").first(),
            "profiles.merge": lambda: profile_merge(
                survivor_id=self.other.pk, merged_id=self.person.pk, actor=Actor.system("test"), reason="staff"
            ),
            "rights.rightsrequest": lambda: RightsRequest.objects.create(
                subject_id=self.person.pk,
                kind="access",
                channel="portal",
                received_at=timezone.now(),
                due_at=timezone.now() + timedelta(days=30),
            ),
            "partners.partnerclient": lambda: self.shop,
            "partners.webhookdelivery": lambda: WebhookDelivery.objects.create(
                client=self.shop, event_id=uuid.uuid4(), event_type="consent.changed"
            ),
        }
        label = model._meta.label_lower
        if label not in seeds:
            pytest.fail(
                f"{label} is registered in the admin: add a seed for it to tests/staff/test_permission_matrix.py"
            )
        obj = seeds[label]()
        assert obj is not None, label
        return obj


@pytest.fixture
def world(profile_schema) -> World:
    return World()


def page_url(model: type[models.Model], page: str, obj: models.Model) -> str:
    opts = model._meta
    args = [obj.pk] if page in ("change", "delete", "history") else []
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{page}", args=args)


def may(perms: set[str], model: type[models.Model], action: str) -> bool:
    opts = model._meta
    return f"{opts.app_label}.{get_permission_codename(action, opts)}" in perms


def page_allowed(perms: set[str], model: type[models.Model], page: str) -> bool:
    """Django's rule for the admin's pages."""
    if page in ("changelist", "change", "history"):
        return may(perms, model, "view") or may(perms, model, "change")
    return may(perms, model, "add" if page == "add" else "delete")


def action_allowed(perms: set[str], model: type[models.Model], name: str) -> bool:
    """Django's rule for actions (any one of the declared permissions), with the staff site's
    for actions that declare none (the change permission), on a list the role may see."""
    if not page_allowed(perms, model, "changelist"):
        return False
    funcs = {action.name: action.func for action in ADMINS[model]._get_base_actions()}
    declared = getattr(funcs[name], "allowed_permissions", None)
    if declared is None:
        return may(perms, model, "change")
    granted = []
    for permission in declared:
        if permission in ("add", "change", "delete", "view"):
            granted.append(may(perms, model, permission))
            continue
        key = (model._meta.label_lower, name)
        if key not in CUSTOM_ACTION_PERMISSIONS:
            pytest.fail(f"Action {key}: say which permission grants {permission!r} in CUSTOM_ACTION_PERMISSIONS")
        granted.append(CUSTOM_ACTION_PERMISSIONS[key] in perms)
    return any(granted)


def offered(response: Any) -> set[str]:
    form = response.context["action_form"] if response.context else None
    return {name for name, _ in form.fields["action"].choices if name} if form is not None else set()


def staff_member(role: str) -> Any:
    user: Any = UserFactory(staff=True, email=f"matrix-{uuid.uuid4().hex[:8]}@staff.example")
    if role != NO_ROLE:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.mark.django_db
@pytest.mark.parametrize("role", [*sorted(ROLES), NO_ROLE])
def test_every_admin_page_action_and_console_answers_as_the_roles_permissions_say(client, world, role):
    perms = set(ROLES.get(role, []))
    objects = {model: world.seed(model) for model in REGISTERED}
    root = UserFactory(superuser=True)
    member = staff_member(role)
    wrong: list[str] = []

    # What the admin allows anyone at all: the superuser's answers and the actions offered to them.
    client.force_login(root)
    ceiling = {
        (model, page): client.get(page_url(model, page, objects[model])).status_code
        for model in REGISTERED
        for page in PAGES
    }
    actions = {model: offered(client.get(page_url(model, "changelist", objects[model]))) for model in REGISTERED}
    console_ceiling = {}
    for console in CONSOLES:
        url = reverse(f"admin:{console.name}", kwargs=console.sample() if console.sample else None)
        console_ceiling[console.name] = (url, client.get(url).status_code)
    assert all(status in (200, 302) for (_, page), status in ceiling.items() if page == "changelist")

    client.force_login(member)
    assert client.get(reverse("admin:index")).status_code == 200
    for model in REGISTERED:
        for page in PAGES:
            top = ceiling[(model, page)]
            expected = top if top != 403 and page_allowed(perms, model, page) else 403
            got = client.get(page_url(model, page, objects[model])).status_code
            if got != expected:
                wrong.append(f"{model._meta.label} {page}: {got}, expected {expected}")

    for model in REGISTERED:
        changelist = page_url(model, "changelist", objects[model])
        listed = client.get(changelist)
        mine = offered(listed) if listed.status_code == 200 else set()
        for name in sorted(actions[model]):
            allowed = action_allowed(perms, model, name)
            if (name in mine) != allowed:
                wrong.append(f"{model._meta.label} action {name}: offered {name in mine}, expected {allowed}")
            before = AuditEntry.objects.filter(action="staff.action").count()
            response = client.post(changelist, {"action": name, "_selected_action": [str(objects[model].pk)]})
            # An action that asks first (delete_selected, a deprecation) ran once it shows its
            # confirmation page: the next POST would do it.
            confirming = response.status_code == 200 and any("confirm" in (t.name or "") for t in response.templates)
            ran = AuditEntry.objects.filter(action="staff.action").count() > before or confirming
            if not page_allowed(perms, model, "changelist") and response.status_code != 403:
                wrong.append(f"{model._meta.label} action {name}: {response.status_code}, expected 403")
            if ran != allowed:
                wrong.append(f"{model._meta.label} action {name}: ran {ran}, expected {allowed}")

    for console in CONSOLES:
        url, top = console_ceiling[console.name]
        expected = top if top != 403 and console.permission in perms else 403
        if (got := client.get(url).status_code) != expected:
            wrong.append(f"console {console.name}: {got}, expected {expected}")

    assert not wrong, f"{role}:\n" + "\n".join(wrong)


# --- Spot checks, written by hand: they catch a wrong rule above ---------------------------------
@pytest.mark.django_db
def test_a_marketer_cannot_open_a_users_page(client, member_of, alice):
    client.force_login(member_of(MARKETER))
    assert client.get(reverse("admin:accounts_user_change", args=[alice.pk])).status_code == 403
    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 403


@pytest.mark.django_db
def test_a_support_agent_cannot_add_a_field_definition(client, member_of, profile_schema):
    client.force_login(member_of(SUPPORT_AGENT))
    url = reverse("admin:profiles_fielddefinition_add")
    assert client.get(url).status_code == 403
    before = FieldDefinition.objects.count()
    assert client.post(url, {"key": "shoe_size", "label": "Shoe size", "field_type": "text"}).status_code == 403
    assert FieldDefinition.objects.count() == before
    # They may read the register, though.
    assert client.get(reverse("admin:profiles_fielddefinition_changelist")).status_code == 200


@pytest.mark.django_db
def test_a_support_agent_cannot_mark_an_address_verified(client, member_of, alice):
    address = EmailAddress.objects.create(user=alice, email=alice.email, verified=False)
    client.force_login(member_of(SUPPORT_AGENT))
    changelist = reverse("admin:account_emailaddress_changelist")
    client.post(changelist, {"action": "make_verified", "_selected_action": [str(address.pk)]})
    address.refresh_from_db()
    assert not address.verified


@pytest.mark.django_db
def test_an_auditor_cannot_change_anything(client, member_of, world):
    objects = {model: world.seed(model) for model in REGISTERED}
    client.force_login(member_of(AUDITOR))
    for model, obj in objects.items():
        label = model._meta.label
        change = page_url(model, "change", obj)
        page = client.get(change)
        data = admin_form_data(page) if page.status_code == 200 else {}
        assert client.post(change, data).status_code == 403, label
        assert client.post(page_url(model, "add", obj), data).status_code == 403, label
        assert client.post(page_url(model, "delete", obj), {"post": "yes"}).status_code == 403, label
        changelist = page_url(model, "changelist", obj)
        for name in ("delete_selected", *(model_admin_actions(model))):
            client.post(changelist, {"action": name, "_selected_action": [str(obj.pk)], "post": "yes"})
    assert not AuditEntry.objects.filter(action__startswith="staff.").exists()
    assert not LogEntry.objects.exists()
    assert all(model._default_manager.filter(pk=obj.pk).exists() for model, obj in objects.items())
    assert Merge.objects.get().undone_at is None


def model_admin_actions(model: type[models.Model]) -> list[str]:
    return [action.name for action in ADMINS[model]._get_base_actions()]


@pytest.mark.django_db
def test_a_privacy_officer_gives_roles_but_cannot_delete_or_make_superusers(client, member_of, alice):
    officer = member_of(PRIVACY_OFFICER)
    client.force_login(officer)
    assert client.get(reverse("admin:accounts_user_change", args=[alice.pk])).status_code == 200
    assert client.get(reverse("admin:accounts_user_delete", args=[alice.pk])).status_code == 403
    assert client.get(reverse("admin:auth_group_changelist")).status_code == 200
    assert client.get(reverse("admin:auth_group_add")).status_code == 403  # roles come from staff/roles.py


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"), [(SUPPORT_AGENT, 200), (PRIVACY_OFFICER, 200), (AUDITOR, 403), (MARKETER, 403)]
)
def test_those_who_handle_requests_act_on_them_and_auditors_only_read(client, member_of, world, role, status):
    request = world.seed(RightsRequest)
    client.force_login(member_of(role))
    assert client.get(reverse("admin:rights_rightsrequest_act", args=[request.pk])).status_code == status


@pytest.mark.django_db
def test_staff_without_a_role_see_the_index_and_nothing_else(client, alice):
    client.force_login(staff_member(NO_ROLE))
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert index.context["app_list"] == []
    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 403


# --- MFA: a staff session that did not pass a second factor reaches no admin page ---------------
MFA_PAGES = [("index", None, "")] + [(model._meta.label_lower, model, page) for model in REGISTERED for page in PAGES]


@pytest.mark.django_db
@pytest.mark.parametrize(("label", "model", "page"), MFA_PAGES, ids=[f"{m[0]}-{m[2]}" for m in MFA_PAGES])
def test_a_staff_session_without_mfa_is_sent_to_verify_from_every_admin_page(
    client, world, staff_mfa, label, model, page
):
    root = UserFactory(superuser=True)  # everything is open to them: a redirect is the MFA rule's
    assert Authenticator.objects.filter(user=root).exists()
    url = reverse("admin:index") if model is None else page_url(model, page, world.seed(model))
    staff_mfa.auto = False  # this login records no second factor
    client.force_login(root)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_reauthenticate"))


@pytest.mark.django_db
def test_without_mfa_no_action_runs_and_no_console_opens(client, world, staff_mfa):
    shop = world.seed(PartnerClient)
    root = UserFactory(superuser=True)
    staff_mfa.auto = False
    client.force_login(root)
    changelist = reverse("admin:partners_partnerclient_changelist")
    response = client.post(changelist, {"action": "revoke_all_credentials", "_selected_action": [str(shop.pk)]})
    assert response.status_code == 302 and response["Location"].startswith(reverse("mfa_reauthenticate"))
    assert not shop.credentials.filter(revoked=True).exists()
    for console in CONSOLES:
        url = reverse(f"admin:{console.name}", kwargs=console.sample() if console.sample else None)
        assert client.get(url).status_code == 302, console.name
