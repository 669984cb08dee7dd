"""Disconnecting a provider takes away what it brought (DESIGN.md invariant 6)."""

import datetime
import threading
from collections.abc import Iterator

import pytest
from allauth.socialaccount.models import SocialAccount
from django.test import Client

from accounts.models import SealedSocialToken
from accounts.services import account_erase
from accounts.social import social_account_revoke
from profiles.gate import RIGHTS_PURPOSE, Actor, profile_read, profile_write
from profiles.models import FieldDefinition, ProfileValue, Source
from profiles.services import profile_source_keep
from tests.accounts.test_erasure import (
    ACCESS,
    PROVIDER_ID,
    REFRESH,
    StubProvider,
    _closed_port,
    _configure,
    _link,
)
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


# --- Keep as my own ----------------------------------------------------------------------------------
def test_the_page_lists_the_imported_fields_by_label_without_their_values(client, alice):
    github = SocialAccount.objects.create(user=alice, provider="github", uid="1")
    imported(alice, "github", given_name="Adaline", city="Leiden")
    client.force_login(alice)

    page = client.get("/accounts/3rdparty/").content.decode()

    assert f'value="{github.pk}:given_name"' in page and f'value="{github.pk}:city"' in page
    assert "Given name" in page and "City" in page
    assert "Adaline" not in page and "Leiden" not in page
    assert not AuditEntry.objects.filter(action="social.unseal").exists(), "nothing decrypted"


def test_kept_values_become_self_provided_and_the_choice_is_audited(client, alice):
    github = SocialAccount.objects.create(user=alice, provider="github", uid="1")
    SocialAccount.objects.create(user=alice, provider="google", uid="other")  # another way in stays
    imported(alice, "github", given_name="Ada", city="Leiden")
    client.force_login(alice)

    response = client.post("/accounts/3rdparty/", {"account": github.pk, "keep": [f"{github.pk}:city"]})

    assert response.status_code == 302
    assert not SocialAccount.objects.filter(pk=github.pk).exists()
    assert own(alice, "given_name", "city") == {"city": "Leiden"}
    kept = ProfileValue.objects.get(subject_id=alice.pk, definition__key="city")
    assert (kept.source, kept.source_name) == (Source.SELF_SERVICE, "")
    keep = AuditEntry.objects.get(action="profile.source_keep")
    assert keep.fields == ["profilevalue.city"] and keep.actor_type == "person"
    assert AuditEntry.objects.get(action="profile.source_purge").fields == ["profilevalue.given_name"]


def test_keeping_a_value_of_another_connection_is_refused_and_deletes_nothing(client, alice):
    github = SocialAccount.objects.create(user=alice, provider="github", uid="1")
    google = SocialAccount.objects.create(user=alice, provider="google", uid="2")
    imported(alice, "github", given_name="Ada")
    imported(alice, "google", city="Leiden")
    client.force_login(alice)

    response = client.post("/accounts/3rdparty/", {"account": github.pk, "keep": [f"{google.pk}:city"]})

    assert response.status_code == 200
    assert "Tick only values of the connection you remove." in response.content.decode()
    assert SocialAccount.objects.filter(pk=github.pk).exists()
    assert ProfileValue.objects.filter(subject_id=alice.pk, source=Source.SOCIAL).count() == 2
    assert not AuditEntry.objects.filter(action__in=["profile.source_keep", "profile.source_purge"]).exists()


def test_a_field_only_staff_may_correct_is_not_offered_and_cannot_be_kept(client, alice):
    github = SocialAccount.objects.create(user=alice, provider="github", uid="1")
    SocialAccount.objects.create(user=alice, provider="google", uid="other")  # another way in stays
    imported(alice, "github", city="Leiden")
    FieldDefinition.objects.filter(key="city").update(person_can_edit=False)
    client.force_login(alice)

    assert f'value="{github.pk}:city"' not in client.get("/accounts/3rdparty/").content.decode()
    response = client.post("/accounts/3rdparty/", {"account": github.pk, "keep": [f"{github.pk}:city"]})

    assert response.status_code == 200, "not a choice"
    assert ProfileValue.objects.filter(subject_id=alice.pk, source=Source.SOCIAL).count() == 1


def test_the_keep_service_relabels_only_what_the_person_may_hold(alice):
    imported(alice, "github", given_name="Ada", city="Leiden")
    FieldDefinition.objects.filter(key="given_name").update(person_can_edit=False)
    kept = profile_source_keep(
        subject_id=alice.pk,
        source=Source.SOCIAL,
        source_name="github",
        keys=["given_name", "city", "birth_date"],
        actor=Actor.person(alice.pk),
    )
    assert kept == ["city"]
    assert (
        profile_source_keep(
            subject_id=alice.pk, source=Source.SOCIAL, source_name="github", keys=[], actor=Actor.person(alice.pk)
        )
        == []
    )


# --- Revocation at disconnect (a real RFC 7009 endpoint on 127.0.0.1) ---------------------------------
@pytest.fixture
def idp(settings) -> Iterator[StubProvider]:
    """tests/accounts/test_erasure.py's OpenID Connect provider: discovery and RFC 7009 revocation."""
    server = StubProvider()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _configure(settings, server.url)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_removing_a_connection_revokes_its_tokens_at_the_provider_first(client, alice, idp):
    account = _link(alice)
    SocialAccount.objects.create(user=alice, provider="other", uid="x")  # another way in stays
    client.force_login(alice)

    response = client.post("/accounts/3rdparty/", {"account": account.pk})

    assert response.status_code == 302
    assert [r["form"] for r in idp.revocations] == [
        {"token": REFRESH, "token_type_hint": "refresh_token"},
        {"token": ACCESS, "token_type_hint": "access_token"},
    ]
    assert not SealedSocialToken.objects.exists(), "then the tokens go with the link"
    unseal = AuditEntry.objects.get(action="social.unseal")
    assert (unseal.actor_id, unseal.purpose) == ("social.token-revocation", "data-subject-rights")


def test_removing_a_connection_through_the_headless_api_revokes_too(alice, idp):
    account = _link(alice)
    _link(alice, uid="kim-2")  # another way in stays
    app = Client()
    app.force_login(alice)
    response = app.delete(
        "/_allauth/browser/v1/account/providers",
        {"provider": PROVIDER_ID, "account": account.uid},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert len(idp.revocations) == 2
    assert not SocialAccount.objects.filter(pk=account.pk).exists()


def test_a_provider_that_is_down_does_not_stop_the_disconnection(client, alice, settings, caplog):
    _configure(settings, f"http://127.0.0.1:{_closed_port()}")
    SocialAccount.objects.create(user=alice, provider="google", uid="other")  # another way in stays
    account = _link(alice)
    client.force_login(alice)
    response = client.post("/accounts/3rdparty/", {"account": account.pk})
    assert response.status_code == 302
    assert not SocialAccount.objects.filter(pk=account.pk).exists()
    assert any("ConnectionError" in r.getMessage() for r in caplog.records)


def test_revoking_one_account_leaves_the_others_alone(alice, idp):
    first = _link(alice)
    _link(alice, uid="kim-2")
    assert social_account_revoke(account_id=first.pk) is True
    assert len(idp.revocations) == 2
    assert social_account_revoke(account_id=10**9) is False, "no such account"


def test_an_erasures_purge_does_not_call_the_provider(alice, idp):
    _link(alice)
    account_erase(subject_id=alice.pk)
    assert idp.revocations == []
    assert not SocialAccount.objects.exists()
