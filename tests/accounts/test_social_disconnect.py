"""Disconnecting a provider takes away what it brought (DESIGN.md invariant 6)."""

import datetime

import pytest
from allauth.socialaccount.models import SocialAccount

from profiles.gate import RIGHTS_PURPOSE, Actor, profile_read, profile_write
from profiles.models import ProfileValue, Source
from vault.models import AuditEntry

pytestmark = pytest.mark.usefixtures("profile_schema", "providers")


@pytest.fixture
def providers(settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        name: {"APPS": [{"client_id": f"vault-{name}", "secret": "client-secret"}]} for name in ("github", "google")
    }


def own(person, *fields):
    read = profile_read(subject_id=person.pk, fields=fields, purpose=RIGHTS_PURPOSE, actor=Actor.person(person.pk))
    return {key: held.value for key, held in read.items()}


def imported(person, provider, **values):
    profile_write(
        subject_id=person.pk,
        values=values,
        source=Source.SOCIAL,
        source_name=provider,
        purpose=RIGHTS_PURPOSE,
        actor=Actor.person(person.pk),
    )


def test_removing_a_connection_deletes_the_values_it_imported(client, alice):
    github = SocialAccount.objects.create(user=alice, provider="github", uid="1")
    SocialAccount.objects.create(user=alice, provider="google", uid="2")
    imported(alice, "github", given_name="Ada", city="Leiden")
    imported(alice, "google", birth_date="1990-06-01")
    profile_write(
        subject_id=alice.pk,
        values={"shoe_size": "38"},
        source=Source.SELF_SERVICE,
        purpose=RIGHTS_PURPOSE,
        actor=Actor.person(alice.pk),
    )
    client.force_login(alice)

    response = client.post("/accounts/3rdparty/", {"account": github.pk})

    assert response.status_code == 302
    assert not SocialAccount.objects.filter(pk=github.pk).exists()
    assert own(alice, "given_name", "city", "birth_date", "shoe_size") == {
        "birth_date": datetime.date(1990, 6, 1),
        "shoe_size": "38",
    }
    entry = AuditEntry.objects.get(action="profile.source_purge")
    assert entry.fields == ["profilevalue.city", "profilevalue.given_name"]


def test_values_stay_while_another_link_to_the_same_provider_remains(client, alice):
    first = SocialAccount.objects.create(user=alice, provider="github", uid="1")
    SocialAccount.objects.create(user=alice, provider="github", uid="2")
    imported(alice, "github", given_name="Ada")
    client.force_login(alice)

    client.post("/accounts/3rdparty/", {"account": first.pk})

    assert ProfileValue.objects.filter(subject_id=alice.pk, source=Source.SOCIAL).count() == 1
