"""Identity resolution: a profile held without an account (a partner's, an import's) is merged
into the account that verifies the same email address; staff merge and undo through the API and
the admin. Merges name people by opaque ids only."""

import datetime
import re
import uuid

import pytest
from allauth.account.models import EmailAddress
from allauth.account.signals import email_confirmed, user_signed_up
from allauth.socialaccount.models import SocialAccount, SocialLogin
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from consent.models import Method
from consent.selectors import consent_is_granted
from consent.services import consent_grant, consent_withdraw
from profiles.gate import (
    ACCOUNT_PURPOSE,
    RIGHTS_PURPOSE,
    Actor,
    profile_read,
    profile_record_write,
    profile_records_read,
    profile_write,
)
from profiles.models import Merge, ProfileEvent, ProfileValue, RecordKind, Restriction, Source
from profiles.services import profile_merge, profile_merge_undo, profile_restrict
from tests.factories import UserFactory, fill
from vault.audit import audit_pseudonym_for, audit_verify
from vault.models import AuditEntry, ErasedSubject

pytestmark = pytest.mark.usefixtures("schema")
PASSWORD = "correct horse battery"
MERGES = reverse("v1:profile-merges")


def undo_url(merge_id):
    return reverse("v1:profile-merge-undo", args=[merge_id])


def imported(email="ada@example.com", **values):
    """A person known only from a shop's import: a profile, consent and an order, no account."""
    subject = uuid.uuid4()
    profile_write(
        subject_id=subject,
        values={"email": email, **values},
        source=Source.IMPORT,
        source_name="shop-crm",
        purpose=ACCOUNT_PURPOSE,
        actor=Actor.partner("shop"),
    )
    consent_grant(subject_id=subject, purpose="personalization", method=Method.IMPORT, age=30)
    profile_record_write(
        subject_id=subject,
        kind="order",
        shape=RecordKind.Shape.EVENT,
        body={"order": "S-1"},
        source=Source.IMPORT,
        actor=Actor.partner("shop"),
    )
    return subject


def own(subject_id, *fields):
    read = profile_read(subject_id=subject_id, fields=fields, purpose=RIGHTS_PURPOSE, actor=Actor.person(subject_id))
    return {key: held.value for key, held in read.items()}


def confirm(user, email):
    """What allauth does when a person confirms an address (verify_email, or the admin action)."""
    address = EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    email_confirmed.send(sender=EmailAddress, request=None, email_address=address)


def audit_of(subject_id, action):
    return AuditEntry.objects.filter(subject_pseudonym=audit_pseudonym_for(subject_id), action=action)


# --- The automatic merge on a verified email ----------------------------------------------------
def test_confirming_an_address_merges_the_profile_held_under_it(client, mailoutbox):
    partner_subject = imported("ada@example.com", given_name="Ada", country="NL")

    response = client.post(
        reverse("account_signup"), {"email": "Ada@Example.com", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 302
    user = User.objects.get(email="ada@example.com")
    assert not Merge.objects.exists()  # the address is not verified yet: nothing moves
    assert ProfileValue.objects.filter(subject_id=partner_subject).count() == 3

    key = re.search(r"/accounts/confirm-email/([^/\s]+)/", mailoutbox[-1].body).group(1)
    assert client.post(reverse("account_confirm_email", args=[key])).status_code == 302
    assert EmailAddress.objects.get(user=user).verified

    assert own(user.pk, "email", "given_name", "country") == {
        "email": "ada@example.com",
        "given_name": "Ada",
        "country": "NL",
    }
    orders = profile_records_read(
        subject_id=user.pk, purpose=RIGHTS_PURPOSE, actor=Actor.person(user.pk), shape=RecordKind.Shape.EVENT
    )
    assert [order.body for order in orders] == [{"order": "S-1"}]
    assert own(partner_subject, "email", "given_name", "country") == {}
    assert not ProfileEvent.objects.filter(subject_id=partner_subject).exists()
    merge = Merge.objects.get()
    assert (merge.survivor_id, merge.merged_id, merge.reason) == (user.pk, partner_subject, "verified_email")
    assert merge.undo_until > timezone.now()
    # Found through the gate, moved re-encrypted, recorded for both people, by the resolver.
    found = AuditEntry.objects.get(action="profile.read", purpose=ACCOUNT_PURPOSE, actor_id="identity-resolution")
    assert found.subject_pseudonym == audit_pseudonym_for(partner_subject)
    assert audit_of(partner_subject, "profile.reseal.merge").get().actor_id == "identity-resolution"
    for subject in (user.pk, partner_subject):
        entry = audit_of(subject, "profile.merge").get()
        assert (entry.actor_type, entry.actor_id) == ("system", "identity-resolution")
    assert audit_verify().ok


def test_the_merge_keeps_the_most_restrictive_consent(alice):
    partner_subject = imported("alice@example.com")
    consent_grant(subject_id=alice.pk, purpose="analytics", method=Method.WEB_FORM, age=30)
    consent_grant(subject_id=partner_subject, purpose="analytics", method=Method.IMPORT, age=30)
    consent_withdraw(subject_id=partner_subject, purpose="analytics", method=Method.IMPORT)

    confirm(alice, "alice@example.com")

    assert Merge.objects.get().merged_id == partner_subject
    assert not consent_is_granted(subject_id=alice.pk, purpose="analytics")
    assert not consent_is_granted(subject_id=alice.pk, purpose="personalization")  # never widened


def test_a_social_sign_up_with_a_verified_address_merges_too(db):
    """A provider that vouches for the address: allauth creates it verified and sends only
    `user_signed_up` (no confirmation happens)."""
    partner_subject = imported("grace@example.com", given_name="Grace")
    user = User.objects.create_user("grace@example.com")
    EmailAddress.objects.create(user=user, email="grace@example.com", verified=True, primary=True)
    account = SocialAccount.objects.create(user=user, provider="openid_connect", uid="grace-1")

    user_signed_up.send(sender=User, request=None, user=user, sociallogin=SocialLogin(user=user, account=account))

    assert own(user.pk, "given_name") == {"given_name": "Grace"}
    assert Merge.objects.get().merged_id == partner_subject


def test_an_unverified_address_merges_nothing(alice):
    partner_subject = imported("alice@example.com", given_name="Ada")
    EmailAddress.objects.create(user=alice, email="alice@example.com", verified=False, primary=True)

    user_signed_up.send(sender=User, request=None, user=alice)
    address = EmailAddress.objects.get(user=alice)
    email_confirmed.send(sender=EmailAddress, request=None, email_address=address)  # not verified after all

    assert not Merge.objects.exists()
    assert own(partner_subject, "given_name") == {"given_name": "Ada"}
    assert own(alice.pk, "given_name") == {}


def test_two_accounts_are_never_merged_automatically(alice, bob):
    fill(bob, email="alice@example.com", given_name="Bob")  # bob typed alice's address in his profile

    confirm(alice, "alice@example.com")

    assert not Merge.objects.exists()
    assert own(bob.pk, "email", "given_name") == {"email": "alice@example.com", "given_name": "Bob"}
    assert own(alice.pk, "given_name") == {}


def test_only_the_profiles_holding_that_address_are_merged(alice):
    other = imported("someone.else@example.com", given_name="Eve")
    mine = imported("alice@example.com", given_name="Ada")

    confirm(alice, "alice@example.com")

    assert Merge.objects.get().merged_id == mine
    assert own(other, "given_name") == {"given_name": "Eve"}


def test_an_undone_merge_is_not_made_again(alice):
    partner_subject = imported("alice@example.com", given_name="Ada")
    confirm(alice, "alice@example.com")
    merge = Merge.objects.get()
    profile_merge_undo(merge_id=merge.pk, actor=Actor.staff(uuid.uuid4()))
    EmailAddress.objects.filter(user=alice).delete()
    confirm(alice, "alice@example.com")  # confirmed again: staff decided these are two people

    assert Merge.objects.count() == 1
    assert own(partner_subject, "given_name") == {"given_name": "Ada"}


def test_a_restricted_profile_is_not_merged_automatically(alice):
    partner_subject = imported("alice@example.com", given_name="Ada")
    profile_restrict(subject_id=partner_subject, actor=Actor.system("rights"))

    confirm(alice, "alice@example.com")

    assert not Merge.objects.exists()


def test_merging_a_restricted_profile_restricts_the_survivor(alice, bob):
    fill(bob, given_name="Bob")
    profile_restrict(subject_id=bob.pk, actor=Actor.system("rights"))

    profile_merge(survivor_id=alice.pk, merged_id=bob.pk, actor=Actor.staff(uuid.uuid4()), reason="staff")

    assert Restriction.objects.filter(subject_id=alice.pk).exists()


def test_an_undo_is_refused_when_the_merged_person_got_new_values_since(alice, staff):
    """A partner that knows only the old id keeps writing to it: the undo must not give that
    person two values of one field (it was a database error)."""
    partner_subject = imported("alice@example.com", given_name="Ada")
    confirm(alice, "alice@example.com")
    imported_again = {"given_name": "Ada L."}
    profile_write(
        subject_id=partner_subject,
        values=imported_again,
        source=Source.IMPORT,
        purpose=ACCOUNT_PURPOSE,
        actor=Actor.partner("shop"),
    )

    response = api(staff).post(undo_url(Merge.objects.get().pk))

    assert (response.status_code, response.json()["errors"][0]["param"]) == (400, "merge")
    assert Merge.objects.get().undone_at is None
    assert own(alice.pk, "given_name") == {"given_name": "Ada"}


# --- The staff API ------------------------------------------------------------------------------
def api(user=None):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_only_staff_merge_profiles(alice, bob, staff):
    partner_subject = imported("alice@example.com")
    body = {"survivor": str(alice.pk), "merged": str(partner_subject)}

    assert APIClient().post(MERGES, body, format="json").status_code == 401
    assert APIClient().get(MERGES).status_code == 401
    for person in (alice, bob):
        response = api(person).post(MERGES, body, format="json")
        assert response.status_code == 403
        assert response.json()["errors"][0]["code"] == "permission_denied"
        assert api(person).get(MERGES).status_code == 403
    assert not Merge.objects.exists()

    response = api(staff).post(MERGES, body, format="json")

    assert response.status_code == 201
    merge = Merge.objects.get()
    assert response.json() == {
        "id": str(merge.pk),
        "survivor": str(alice.pk),
        "merged": str(partner_subject),
        "reason": "staff",
        "created_at": response.json()["created_at"],
        "undo_until": response.json()["undo_until"],
        "undone_at": None,
    }
    assert own(alice.pk, "email") == {"email": "alice@example.com"}
    entry = audit_of(alice.pk, "profile.merge").get()
    assert (entry.actor_type, entry.actor_id) == ("staff", str(staff.pk))
    assert "alice@example.com" not in response.content.decode()


def test_bad_merges_name_the_input_at_fault(alice, bob, staff):
    partner_subject = imported("someone@example.com")
    ErasedSubject.objects.create(subject_id=(erased := uuid.uuid4()))
    cases = [
        ({"survivor": str(alice.pk), "merged": str(alice.pk)}, "merged", "merge_not_possible"),
        ({"survivor": str(alice.pk), "merged": str(uuid.uuid4())}, "merged", "merge_not_possible"),
        ({"survivor": str(uuid.uuid4()), "merged": str(partner_subject)}, "survivor", "merge_not_possible"),
        ({"survivor": str(alice.pk), "merged": str(erased)}, "merged", "merge_not_possible"),
        ({"survivor": str(erased), "merged": str(alice.pk)}, "survivor", "merge_not_possible"),
        ({"survivor": str(partner_subject), "merged": str(alice.pk)}, "survivor", "merge_not_possible"),
        ({"survivor": "not-a-uuid", "merged": str(alice.pk)}, "survivor", "invalid"),
        ({"survivor": str(alice.pk)}, "merged", "required"),
    ]
    for body, param, code in cases:
        response = api(staff).post(MERGES, body, format="json")
        assert response.status_code == 400, body
        assert response.json()["status"] == 400
        assert [(e["param"], e["code"]) for e in response.json()["errors"]] == [(param, code)], body
    assert "not-a-uuid" not in api(staff).post(MERGES, cases[-2][0], format="json").content.decode()
    assert not Merge.objects.exists()


def test_staff_merge_two_accounts_and_undo_once(alice, bob, staff):
    fill(alice, city="Leiden")
    fill(bob, city="Delft", shoe_size="38")
    created = api(staff).post(MERGES, {"survivor": str(alice.pk), "merged": str(bob.pk)}, format="json").json()
    assert own(alice.pk, "city", "shoe_size") == {"city": "Leiden", "shoe_size": "38"}

    assert api(bob).post(undo_url(created["id"])).status_code == 403
    response = api(staff).post(undo_url(created["id"]))

    assert response.status_code == 200
    assert response.json()["undone_at"] is not None
    assert own(alice.pk, "city", "shoe_size") == {"city": "Leiden"}
    assert own(bob.pk, "city", "shoe_size") == {"city": "Delft", "shoe_size": "38"}
    again = api(staff).post(undo_url(created["id"]))
    assert again.status_code == 400
    assert (again.json()["errors"][0]["code"], again.json()["errors"][0]["param"]) == ("merge_not_possible", "merge")
    assert api(staff).post(undo_url(uuid.uuid4())).status_code == 404
    assert api(staff).post("/api/v1/profile-merges/not-a-uuid/undo/").status_code == 404
    assert audit_of(bob.pk, "profile.merge_undo").get().actor_id == str(staff.pk)


def test_an_expired_merge_cannot_be_undone(alice, bob, staff):
    fill(bob, city="Delft")
    merge = profile_merge(survivor_id=alice.pk, merged_id=bob.pk, actor=Actor.staff(staff.pk), reason="staff")
    Merge.objects.filter(pk=merge.pk).update(undo_until=timezone.now() - datetime.timedelta(seconds=1))

    response = api(staff).post(undo_url(merge.pk))

    assert (response.status_code, response.json()["errors"][0]["param"]) == (400, "merge")
    assert own(alice.pk, "city") == {"city": "Delft"}


def test_staff_list_merges_newest_first_with_ids_only(alice, bob, staff, django_assert_max_num_queries):
    system = Actor.system("test")
    first = profile_merge(survivor_id=alice.pk, merged_id=imported("a@example.com"), actor=system, reason="staff")
    made = [first] + [
        profile_merge(survivor_id=bob.pk, merged_id=imported(f"b{n}@example.com"), actor=system, reason="staff")
        for n in range(4)
    ]

    with django_assert_max_num_queries(4):
        response = api(staff).get(MERGES, {"page_size": 2})

    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 5
    assert len(body["results"]) == 2
    assert set(body["results"][0]) == {"id", "survivor", "merged", "reason", "created_at", "undo_until", "undone_at"}
    everything = api(staff).get(MERGES).json()["results"]
    assert [item["id"] for item in everything] == [str(merge.pk) for merge in reversed(made)]
    listed = api(staff).get(MERGES, {"subject": str(alice.pk)}).json()["results"]
    assert [item["id"] for item in listed] == [str(first.pk)]
    bad = api(staff).get(MERGES, {"subject": "alice@example.com"})
    assert (bad.status_code, bad.json()["errors"][0]["param"]) == (400, "subject")
    assert "alice@example.com" not in bad.content.decode()


# --- The admin ----------------------------------------------------------------------------------
def test_admin_undoes_a_merge_through_the_service(client, admin_user, alice, bob):
    fill(bob, city="Delft")
    merge = profile_merge(survivor_id=alice.pk, merged_id=bob.pk, actor=Actor.system("t"), reason="staff")
    client.force_login(admin_user)
    changelist = reverse("admin:profiles_merge_changelist")
    assert b"Undo this merge" in client.get(changelist).content

    response = client.post(changelist, {"action": "undo", "_selected_action": [str(merge.pk)]}, follow=True)

    assert response.status_code == 200
    assert f"Merge {merge.pk} undone." in response.content.decode()
    assert Merge.objects.get().undone_at is not None
    assert own(bob.pk, "city") == {"city": "Delft"}
    assert audit_of(bob.pk, "profile.merge_undo").get().actor_id == str(admin_user.pk)

    again = client.post(changelist, {"action": "undo", "_selected_action": [str(merge.pk)]}, follow=True)
    assert "can no longer be undone" in again.content.decode()
    assert audit_of(bob.pk, "profile.merge_undo").count() == 1


def test_staff_without_the_change_permission_cannot_undo_in_the_admin(client, alice, bob):
    from django.contrib.auth.models import Permission

    viewer = UserFactory(staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_merge"))
    merge = profile_merge(survivor_id=alice.pk, merged_id=bob.pk, actor=Actor.system("t"), reason="staff")
    client.force_login(viewer)
    changelist = reverse("admin:profiles_merge_changelist")
    assert client.get(changelist).status_code == 200
    assert b"Undo this merge" not in client.get(changelist).content

    client.post(changelist, {"action": "undo", "_selected_action": [str(merge.pk)]})

    assert Merge.objects.get().undone_at is None
