"""What a newcomer meets first: JSON errors on unknown API paths, public API docs, greetings."""

import pytest
from django.test import Client


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_an_unknown_api_path_answers_the_envelope(client, settings, debug):
    settings.DEBUG = debug
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"status": 404, "errors": [{"code": "not_found", "message": "Not found."}]}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/"])
def test_the_api_schema_and_docs_are_the_same_for_everyone(client, staff, alice, url, staff_mfa):
    from django.contrib.auth.signals import user_logged_in

    user_logged_in.disconnect(dispatch_uid="tests.staff_mfa.login")  # a staff session without MFA
    assert Client().get(url).status_code == 200
    for user in (alice, staff):
        signed_in = Client()
        signed_in.force_login(user)  # staff without an MFA session: no longer refused here
        assert signed_in.get(url).status_code == 200


@pytest.mark.django_db
def test_signing_in_greets_the_person_by_address_not_by_id(client, alice):
    from allauth.account.models import EmailAddress

    alice.set_password("correct horse battery")
    alice.save()
    EmailAddress.objects.create(user=alice, email=alice.email, verified=True, primary=True)
    response = client.post("/accounts/login/", {"login": alice.email, "password": "correct horse battery"}, follow=True)
    shown = [str(message) for message in response.context["messages"]]
    assert shown == [f"Successfully signed in as {alice.email}."]
    assert str(alice.pk) not in response.content.decode()
