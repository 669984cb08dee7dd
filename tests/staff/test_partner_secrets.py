"""Partner clients in the admin: a new API key and a webhook signing secret are shown exactly
once, on a page no cache keeps; only the key's prefix and hash, and the sealed secret, are
stored, so every later page shows the prefix (or that a secret is set) and nothing more."""

import json

import pytest
from django.urls import reverse

from partners.models import PartnerClient, PartnerCredential
from partners.secrets import webhook_secret_unseal
from partners.services import partner_client_create
from profiles.gate import Actor
from tests.staff.conftest import admin_form_data
from vault.models import AuditEntry

pytestmark = pytest.mark.usefixtures("profile_schema")

NEW_CLIENT = {
    "slug": "mailer",
    "name": "Mailer",
    "purposes": '["email-marketing"]',
    "fields": '["given_name"]',
    "record_kinds": "[]",
    "rate_limit": "600/min",
    "ip_allowlist": "[]",
    "webhook_url": "https://hooks.example.net/in",
    "is_active": "on",
    "credentials-TOTAL_FORMS": "0",
    "credentials-INITIAL_FORMS": "0",
}


@pytest.fixture
def officer(client, member_of):
    client.force_login(member_of("Privacy officer"))
    return client


@pytest.fixture
def mailer(db) -> PartnerClient:
    return partner_client_create(
        slug="mailer", name="Mailer", actor=Actor.system("test"), purposes=["email-marketing"], fields=["given_name"]
    )


def _shown(response, element: str) -> str:
    html = response.content.decode()
    start = html.index(f'<code id="{element}">') + len(f'<code id="{element}">')
    return html[start : html.index("</code>", start)]


def _never_cached(response) -> bool:
    return "no-store" in response["Cache-Control"]


def test_creating_a_client_shows_its_key_and_webhook_secret_once(officer):
    response = officer.post(reverse("admin:partners_partnerclient_add"), NEW_CLIENT)
    assert response.status_code == 200, response.content.decode()[:3000]
    assert _never_cached(response)
    key, secret = _shown(response, "shown-key"), _shown(response, "shown-webhook-secret")
    client = PartnerClient.objects.get(slug="mailer")
    credential = PartnerCredential.objects.get(client=client)
    assert key.startswith(credential.prefix + ".")
    assert key not in credential.hashed_key and credential.is_valid(key)  # stored hashed, and it works
    assert secret.startswith("whsec_") and secret not in json.dumps(client.webhook_secret)
    assert webhook_secret_unseal(client.webhook_secret) == secret
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"partners.client_create", "partners.credential_create", "partners.webhook_secret_rotate"} <= actions

    # Every later page shows the prefix, never the key or the secret.
    for url in (
        reverse("admin:partners_partnerclient_change", args=[client.pk]),
        reverse("admin:partners_partnerclient_changelist"),
    ):
        html = officer.get(url).content.decode()
        assert key not in html and key.split(".")[1] not in html and secret not in html
    assert (
        credential.prefix
        in officer.get(reverse("admin:partners_partnerclient_change", args=[client.pk])).content.decode()
    )


def test_a_client_the_service_refuses_is_a_form_error(officer):
    response = officer.post(reverse("admin:partners_partnerclient_add"), NEW_CLIENT | {"purposes": '["nope"]'})
    assert response.status_code == 200
    assert b"Unknown purpose: nope." in response.content
    assert not PartnerClient.objects.exists()


def test_changes_go_through_the_service(officer, mailer):
    url = reverse("admin:partners_partnerclient_change", args=[mailer.pk])
    data = admin_form_data(officer.get(url)) | {"rate_limit": "60/min"}
    assert officer.post(url, data).status_code == 302
    assert PartnerClient.objects.get().rate_limit == "60/min"
    entry = AuditEntry.objects.filter(action="partners.client_update").get()
    assert entry.fields == ["client.mailer", "rate_limit"]


def test_a_new_credential_is_shown_once(officer, mailer):
    url = reverse("admin:partners_partnerclient_credential", args=[mailer.pk])
    page = officer.get(reverse("admin:partners_partnerclient_change", args=[mailer.pk]))
    assert url.encode() in page.content
    assert officer.get(url).status_code == 200  # asks first, issues nothing
    assert not PartnerCredential.objects.exists()
    response = officer.post(url)
    assert response.status_code == 200 and _never_cached(response)
    key = _shown(response, "shown-key")
    credential = PartnerCredential.objects.get()
    assert credential.is_valid(key)
    assert key not in officer.get(reverse("admin:partners_partnerclient_change", args=[mailer.pk])).content.decode()


def test_a_rotated_webhook_secret_is_shown_once(officer, mailer):
    url = reverse("admin:partners_partnerclient_webhook_secret", args=[mailer.pk])
    response = officer.post(url)
    assert response.status_code == 200 and _never_cached(response)
    secret = _shown(response, "shown-webhook-secret")
    mailer.refresh_from_db()
    assert webhook_secret_unseal(mailer.webhook_secret) == secret
    page = officer.get(reverse("admin:partners_partnerclient_change", args=[mailer.pk])).content.decode()
    assert secret not in page and "set (shown once" in page


@pytest.mark.parametrize("role", ["Marketer", "Auditor", "Support agent"])
def test_only_those_who_may_change_clients_make_secrets(client, member_of, role, mailer):
    client.force_login(member_of(role))
    for name in ("credential", "webhook_secret"):
        url = reverse(f"admin:partners_partnerclient_{name}", args=[mailer.pk])
        assert client.get(url).status_code == 403
        assert client.post(url).status_code == 403
    mailer.refresh_from_db()
    assert not PartnerCredential.objects.exists() and mailer.webhook_secret is None
