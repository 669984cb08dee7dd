"""The admin pages that hold identifiers: the user page (address masked, replaced only by typing a
new one, only by those who may change users) and allauth's pages as wrapped in staff."""

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialApp
from allauth.usersessions.models import UserSession
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import User
from staff.roles import PRIVACY_OFFICER, SUPPORT_AGENT
from tests.factories import PASSWORD, UserFactory


def user_page(user) -> str:
    return reverse("admin:accounts_user_change", args=[user.pk])


@pytest.fixture
def superuser(db):
    return UserFactory.create(superuser=True, email="root@staff.example")


@pytest.mark.django_db
def test_the_superuser_replaces_a_login_address_without_seeing_it(client, superuser, alice):
    EmailAddress.objects.create(user=alice, email=alice.email, primary=True, verified=True)
    client.force_login(superuser)
    html = client.get(user_page(alice)).content.decode()
    assert "a***@example.com" in html and "alice@example.com" not in html
    assert 'name="new_email"' in html
    answer = client.post(
        user_page(alice),
        {"new_email": " Alice.New@Example.com ", "is_active": "on", "_save": "Save"},
    )
    assert answer.status_code == 302, answer.content.decode()
    assert User.objects.get(pk=alice.pk).email == "alice.new@example.com"
    # The old address no longer receives the account's mail; the new one is verified by its owner.
    (row,) = EmailAddress.objects.filter(user=alice)
    assert (row.email, row.primary, row.verified) == ("alice.new@example.com", True, False)


@pytest.mark.django_db
def test_an_empty_new_address_keeps_the_login(client, superuser, alice):
    client.force_login(superuser)
    answer = client.post(user_page(alice), {"new_email": "", "is_active": "on", "_save": "Save"})
    assert answer.status_code == 302
    assert User.objects.get(pk=alice.pk).email == "alice@example.com"


@pytest.mark.django_db
def test_a_taken_address_is_a_form_error(client, superuser, alice, bob):
    client.force_login(superuser)
    answer = client.post(user_page(alice), {"new_email": "bob@example.com", "is_active": "on", "_save": "Save"})
    assert answer.status_code == 200
    assert "Another account signs in with this address." in answer.content.decode()
    assert User.objects.get(pk=alice.pk).email == "alice@example.com"


@pytest.mark.django_db
def test_the_privacy_officer_cannot_take_over_a_persons_account(client, member_of, alice):
    """A person's login and password are theirs: typing them in would be signing in as them."""
    client.force_login(member_of(PRIVACY_OFFICER))
    html = client.get(user_page(alice)).content.decode()
    assert 'name="new_email"' not in html and "password/" not in html
    answer = client.post(user_page(alice), {"new_email": "attacker@evil.example", "is_active": "on", "_save": "Save"})
    assert answer.status_code == 403
    password = reverse("admin:auth_user_password_change", args=[alice.pk])
    assert client.post(password, {"password1": "x-Y-z-12345678", "password2": "x-Y-z-12345678"}).status_code == 403
    alice.refresh_from_db()
    assert alice.email == "alice@example.com" and alice.check_password(PASSWORD)


@pytest.mark.django_db
def test_the_privacy_officer_gives_roles_to_other_staff_only(client, member_of, superuser):
    officer = member_of(PRIVACY_OFFICER)
    agent = member_of(SUPPORT_AGENT)
    every_role = list(Group.objects.values_list("pk", flat=True))
    client.force_login(officer)
    form = {"is_active": "on", "groups": every_role, "_save": "Save"}
    # Not themselves, not a superuser: nobody raises their own powers or the installer's.
    assert client.post(user_page(officer), form).status_code == 403
    assert client.post(user_page(superuser), {"_save": "Save"}).status_code == 403
    assert set(officer.groups.values_list("name", flat=True)) == {PRIVACY_OFFICER}
    # Another staff member's roles, yes; making someone staff or superuser, no.
    answer = client.post(user_page(agent), form | {"is_staff": "", "is_superuser": "on"})
    assert answer.status_code == 302
    agent.refresh_from_db()
    assert agent.groups.count() == len(every_role)
    assert agent.is_staff and not agent.is_superuser


@pytest.mark.django_db
def test_the_password_page_names_the_login_by_id(client, superuser, alice):
    client.force_login(superuser)
    html = client.get(reverse("admin:auth_user_password_change", args=[alice.pk])).content.decode()
    assert str(alice.pk) in html and "alice@example.com" not in html


@pytest.mark.django_db
def test_who_may_only_view_users_sees_the_address_masked_and_no_field_to_change_it(client, member_of, alice):
    client.force_login(member_of(SUPPORT_AGENT))
    html = client.get(user_page(alice)).content.decode()
    assert "a***@example.com" in html and "alice@example.com" not in html
    assert 'name="new_email"' not in html
    assert client.post(user_page(alice), {"new_email": "x@example.com"}).status_code == 403


@pytest.mark.django_db
def test_the_user_list_searches_by_exact_id_only(client, member_of, alice, bob):
    client.force_login(member_of(SUPPORT_AGENT))
    listing = reverse("admin:accounts_user_changelist")
    by_id = client.get(listing, {"q": str(alice.pk)}).content.decode()
    assert str(alice.pk) in by_id and str(bob.pk) not in by_id
    for fragment in ("alice", "alice@example.com", "example.com"):
        answer = client.get(listing, {"q": fragment})
        assert answer.status_code == 200
        assert str(alice.pk) not in answer.content.decode()


@pytest.mark.django_db
def test_an_address_page_names_it_by_id_and_shows_it_masked(client, member_of, alice):
    address = EmailAddress.objects.create(user=alice, email=alice.email, primary=True, verified=True)
    client.force_login(member_of(SUPPORT_AGENT))
    for page in ("change", "history"):
        answer = client.get(reverse(f"admin:account_emailaddress_{page}", args=[address.pk]))
        assert answer.status_code == 200
        html = answer.content.decode()
        assert f"email address {address.pk}" in html and "alice@example.com" not in html, page
    change = client.get(reverse("admin:account_emailaddress_change", args=[address.pk])).content.decode()
    assert "a***@example.com" in change and reverse("admin:staff_person", args=[alice.pk]) in change
    listing = client.get(reverse("admin:account_emailaddress_changelist")).content.decode()
    assert "a***@example.com" in listing and "alice@example.com" not in listing


@pytest.mark.django_db
def test_an_address_is_verified_on_its_page_not_retyped(client, alice):
    address = EmailAddress.objects.create(user=alice, email=alice.email, primary=True, verified=False)
    client.force_login(UserFactory.create(email="root@example.com", superuser=True))
    url = reverse("admin:account_emailaddress_change", args=[address.pk])
    answer = client.post(url, {"verified": "on", "primary": "on", "email": "mallory@example.com"})
    assert answer.status_code == 302
    address.refresh_from_db()
    assert (address.verified, address.email) == (True, "alice@example.com")


@pytest.mark.django_db
def test_a_social_account_page_names_the_provider_not_the_uid_or_address(client, member_of, alice):
    account = SocialAccount.objects.create(user=alice, provider="google", uid="uid-5550001")
    client.force_login(member_of(SUPPORT_AGENT))
    html = client.get(reverse("admin:socialaccount_socialaccount_change", args=[account.pk])).content.decode()
    assert f"social account {account.pk}" in html
    assert "uid-5550001" not in html and "alice@example.com" not in html


@pytest.mark.django_db
def test_a_client_secret_is_write_only(client, alice):
    app = SocialApp.objects.create(provider="github", name="GitHub", client_id="cid", secret="old-secret-9")
    root = UserFactory.create(email="root@example.com", superuser=True)
    client.force_login(root)
    page = reverse("admin:socialaccount_socialapp_change", args=[app.pk])
    assert "old-secret-9" not in client.get(page).content.decode()
    form = {"provider": "github", "provider_id": "", "name": "GitHub", "client_id": "cid", "secret": "", "key": ""}
    assert client.post(page, {**form, "settings": ""}).status_code == 302
    app.refresh_from_db()
    assert (app.secret, app.settings) == ("old-secret-9", {})
    assert client.post(page, {**form, "secret": "new-secret-7", "settings": ""}).status_code == 302
    app.refresh_from_db()
    assert app.secret == "new-secret-7"


@pytest.mark.django_db
def test_a_session_page_shows_no_session_key(client, alice):
    session = UserSession.objects.create(user=alice, ip="192.0.2.1", session_key="s" * 32, user_agent="Mozilla/5.0")
    client.force_login(UserFactory.create(email="root@example.com", superuser=True))
    html = client.get(reverse("admin:usersessions_usersession_change", args=[session.pk])).content.decode()
    assert "s" * 32 not in html and "192.0.2.1" not in html


@pytest.mark.django_db
def test_a_person_is_not_deleted_from_the_user_list_but_erased(client, alice):
    """Deleting a user row would leave their sealed data behind without destroying their key: the
    address rows (which staff may not delete) stop it, and the page names no address."""
    EmailAddress.objects.create(user=alice, email=alice.email, primary=True, verified=True)
    client.force_login(UserFactory.create(email="root@example.com", superuser=True))
    page = reverse("admin:accounts_user_delete", args=[alice.pk])
    html = client.get(page).content.decode()
    assert "Cannot delete user" in html and "alice@example.com" not in html
    assert client.post(page, {"post": "yes"}).status_code == 403
    assert User.objects.filter(pk=alice.pk).exists()


@pytest.mark.django_db
def test_a_social_account_prints_as_its_provider_and_id_everywhere(alice):
    """allauth prints a linked account as its user's display, the address (SOCIALACCOUNT_STR)."""
    account = SocialAccount.objects.create(user=alice, provider="google", uid="uid-5550002")
    assert str(account) == f"google account {account.pk}"
