"""No page of the staff admin shows a person's values, full e-mail addresses, a provider's id for
the person, a token or a client secret: every registered model's list, a search in it, and the
page of every row with its history and delete confirmation, fetched as a superuser (who holds
every permission, reveal included)."""

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from allauth.usersessions.models import UserSession
from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from consent.models import Method
from consent.services import consent_grant
from profiles.gate import Actor, profile_write
from profiles.models import Source
from rights.services import rights_request_submit
from tests.factories import UserFactory, add_totp, fill

LOGIN = "wilhelmina.quackenbush@example.org"
CONTACT = "w.quackenbush@example.net"
VALUES = {
    "given_name": "Wilhelmina",
    "family_name": "Quackenbush",
    "phone": "+31612345678",
    "birth_date": "1987-03-14",
    "city": "Oostvoorne",
    "postal_code": "3233 AB",
    "favorite_brands": "Zyxcorp Sneakers",
}
UID = "uid-117733550042"
SECRETS = ("client-secret-Qw7Zr", "access-token-Hk3Lm", "refresh-token-Pp9Xa", "app-key-Tt5Vb")
RECTIFIED = "98765.43"  # a value sealed inside a rights request's details
SESSION_KEY = "k" * 32


@pytest.fixture
def seeded(profile_schema, staff_mfa):
    person = UserFactory.create(email=LOGIN)
    fill(person, **VALUES)
    profile_write(
        subject_id=person.pk,
        values={"email": CONTACT},
        source=Source.SOCIAL,
        source_name="google",
        purpose="data-subject-rights",
        actor=Actor.person(person.pk),
    )
    EmailAddress.objects.create(user=person, email=LOGIN, primary=True, verified=True)
    EmailAddress.objects.create(user=person, email=CONTACT, primary=False, verified=False)
    app = SocialApp.objects.create(
        provider="google", name="Google", client_id="client-id-public", secret=SECRETS[0], key=SECRETS[3]
    )
    account = SocialAccount.objects.create(user=person, provider="google", uid=UID)
    SocialToken.objects.create(
        app=app, account=account, token=SECRETS[1], token_secret=SECRETS[2], expires_at=timezone.now() + timedelta(1)
    )
    UserSession.objects.create(user=person, ip="192.0.2.44", session_key=SESSION_KEY, user_agent="Mozilla/5.0 Test")
    add_totp(person)
    consent_grant(subject_id=person.pk, purpose="personalization", method=Method.WEB_FORM, age=30)
    rights_request_submit(
        subject_id=person.pk,
        kind="rectification",
        channel="portal",
        verification="reauthentication",
        actor=Actor.person(person.pk),
        values={"lifetime_value": RECTIFIED},
    )
    rights_request_submit(
        subject_id=person.pk, kind="access", channel="portal", verification="", actor=Actor.person(person.pk)
    )
    return person


FORBIDDEN = (LOGIN, CONTACT, UID, RECTIFIED, SESSION_KEY, "192.0.2.44", *VALUES.values(), *SECRETS)


VIEWER = "root@example.com"


def leaks(html: str) -> list[str]:
    found = [value for value in FORBIDDEN if value in html]
    # Any full address at all (masked ones read "a***@example.com"), but the viewer's own in the
    # admin's greeting ("Welcome, root@example.com"): their login, shown to them.
    html = html.replace(f"<strong>{VIEWER}</strong>", "")
    found += [word for word in html.split() if "@example." in word and "***@" not in word]
    return found


def pages(site):
    """(url, description) of every list, search, row page, its history and its delete confirmation
    (a GET deletes nothing) of the site's registered models."""
    for model in site._registry:
        opts = model._meta
        try:
            changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        except NoReverseMatch:
            continue
        yield changelist, f"{opts.label} list"
        for term in ("wilhelmina", "Quack", "example.org", "uid-1177", "+3161"):
            yield f"{changelist}?q={term}", f"{opts.label} search {term!r}"
        for pk in model._default_manager.values_list("pk", flat=True)[:20]:
            for page in ("change", "history", "delete"):
                url = reverse(f"admin:{opts.app_label}_{opts.model_name}_{page}", args=[pk])
                yield url, f"{opts.label} {pk} {page}"


@pytest.mark.django_db
def test_no_admin_page_shows_plaintext(client, seeded):
    root = UserFactory.create(email=VIEWER, superuser=True)
    client.force_login(root)
    checked = 0
    for url, what in pages(admin.site):
        answer = client.get(url, follow=True)
        assert answer.status_code in (200, 403), f"{what}: {answer.status_code}"
        html = answer.content.decode()
        assert not leaks(html), f"{what} ({url}) shows {leaks(html)}"
        checked += 1
    assert checked > 50
    # And the person's own page, and Find a person with their address, as the superuser.
    person_page = client.get(reverse("admin:staff_person", args=[seeded.pk])).content.decode()
    assert not leaks(person_page)
    found = client.post(reverse("admin:staff_person_find"), {"query": LOGIN}).content.decode()
    assert "1 found" in found and not leaks(found)
    assert not leaks(client.get(reverse("admin:index")).content.decode())
