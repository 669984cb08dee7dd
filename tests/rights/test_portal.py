"""The privacy centre and the request pages, through HTTP as a browser uses them."""

import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from rights.models import RightsRequest
from tests.rights.conftest import reauthenticate

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _schema(profile_schema, settings):
    settings.RIGHTS_ERASURE_GRACE_HOURS = 48


def test_the_privacy_centre_offers_every_right_and_nothing_coming_soon(signed_in, alice):
    page = signed_in(alice).get("/privacy/").content.decode()
    assert "Coming soon" not in page
    for right in (
        "Prepare my export",
        "Restrict processing",
        "Delete my account",
        "Do Not Sell or Share My Personal Information",
        "Limit the Use of My Sensitive Personal Information",
        "See who accessed your data",
    ):
        assert right in page, right
    footer = page.split('<footer class="site-footer">', 1)[1]
    assert "/privacy/do-not-sell-or-share/" in footer and "/privacy/limit-sensitive/" in footer


def test_export_asks_to_reauthenticate_then_builds_and_downloads(client, alice, django_capture_on_commit_callbacks):
    client.force_login(alice)
    answer = client.post("/privacy/requests/", {"kind": "export"})
    assert answer.status_code == 302
    assert answer["Location"].startswith("/accounts/reauthenticate/?next=")
    assert not RightsRequest.objects.exists()
    reauthenticate(client, alice)
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post("/privacy/requests/", {"kind": "export"})
    made = RightsRequest.objects.get()
    assert answer["Location"] == f"/privacy/requests/{made.pk}/"
    page = client.get(answer["Location"]).content.decode()
    assert "Download your data" in page and "Completed" in page
    zipped = client.get(f"/privacy/requests/{made.pk}/export.zip")
    assert zipped.status_code == 200
    assert zipped["Content-Type"] == "application/zip"
    assert zipped["Cache-Control"] == "no-store"
    assert zipped.content[:2] == b"PK"


def test_download_without_a_recent_reauthentication_goes_through_it_and_back(
    client, alice, signed_in, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        signed_in(alice).post("/privacy/requests/", {"kind": "export"})
    made = RightsRequest.objects.get()
    client.logout()
    client.force_login(alice)  # signed in long ago: no fresh authentication
    answer = client.get(f"/privacy/requests/{made.pk}/export.zip")
    assert answer.status_code == 302
    assert "next=%2Fprivacy%2Frequests%2F" in answer["Location"]


def test_an_expired_export_is_explained_not_served(signed_in, alice, django_capture_on_commit_callbacks):
    client = signed_in(alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/privacy/requests/", {"kind": "export"})
    made = RightsRequest.objects.get()
    made.bundle.expires_at = timezone.now() - timedelta(minutes=1)
    made.bundle.save()
    answer = client.get(f"/privacy/requests/{made.pk}/export.zip", follow=True)
    assert answer.redirect_chain[-1][0] == f"/privacy/requests/{made.pk}/"
    assert "expired" in answer.content.decode()


def test_another_persons_request_pages_are_404(signed_in, alice, bob, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        signed_in(alice).post("/privacy/requests/", {"kind": "export"})
    made = RightsRequest.objects.get()
    client = signed_in(bob)
    for url in (f"/privacy/requests/{made.pk}/", f"/privacy/requests/{made.pk}/export.zip"):
        assert client.get(url).status_code == 404
    assert client.post(f"/privacy/requests/{made.pk}/cancel/").status_code == 302
    assert RightsRequest.objects.get(pk=made.pk).status == "completed"


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for url in (
        "/privacy/",
        f"/privacy/requests/{uuid.uuid4()}/",
        "/privacy/delete-account/",
        "/privacy/correction/",
        "/privacy/do-not-sell-or-share/",
        "/privacy/limit-sensitive/",
    ):
        answer = client.get(url)
        assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/"), url


def test_erasure_needs_the_box_ticked_then_waits_and_can_be_cancelled(signed_in, alice):
    client = signed_in(alice)
    answer = client.post("/privacy/delete-account/", {})
    assert answer.status_code == 400
    assert "confirm it explicitly" in answer.content.decode()
    assert not RightsRequest.objects.exists()
    answer = client.post("/privacy/delete-account/", {"confirm": "yes"})
    made = RightsRequest.objects.get()
    assert made.grace_ends_at > timezone.now() + timedelta(hours=47)
    page = client.get(answer["Location"]).content.decode()
    assert "unless you cancel" in page
    assert "Your account is already due to be deleted" in client.get("/privacy/delete-account/").content.decode()
    client.post(f"/privacy/requests/{made.pk}/cancel/")
    assert RightsRequest.objects.get().status == "cancelled"


def test_restriction_and_its_lifting_from_the_privacy_centre(signed_in, alice):
    client = signed_in(alice, fresh=False)
    client.post("/privacy/restriction/", {"kind": "restriction", "action": "restrict"})
    assert "Processing is restricted." in client.get("/privacy/").content.decode()
    client.post("/privacy/restriction/", {"action": "lift"})
    assert "Processing is restricted." not in client.get("/privacy/").content.decode()


def test_objection_beside_withdrawal(signed_in, alice):
    from consent.selectors import consent_is_granted
    from tests.factories import PurposeFactory

    PurposeFactory(slug="fraud-scoring", name="Fraud scoring", legal_basis="legitimate_interest")
    client = signed_in(alice, fresh=False)
    page = client.get("/privacy/").content.decode()
    assert "Fraud scoring" in page
    client.post("/privacy/requests/", {"kind": "objection", "purposes": ["fraud-scoring"]})
    assert not consent_is_granted(subject_id=alice.pk, purpose="fraud-scoring")
    assert "you objected" in client.get("/privacy/").content.decode()


def test_do_not_sell_in_one_step(signed_in, alice):
    from consent.selectors import consent_is_granted
    from tests.factories import grant

    grant(alice, "advertising-partners")
    client = signed_in(alice, fresh=False)
    assert (
        "Do not sell or share my personal information" in client.get("/privacy/do-not-sell-or-share/").content.decode()
    )
    client.post("/privacy/do-not-sell-or-share/")
    assert not consent_is_granted(subject_id=alice.pk, purpose="advertising-partners")


def test_a_correction_with_a_bad_value_is_a_form_error_and_saves_nothing(signed_in, alice):
    from profiles.gate import Actor
    from profiles.services import field_definition_update

    field_definition_update(key="birth_date", actor=Actor.system("test"), person_can_edit=False)
    client = signed_in(alice)
    answer = client.post("/privacy/correction/", {"field": "birth_date", "value": "yesterday-ish"})
    assert answer.status_code == 400
    assert re.search(r'class="error"', answer.content.decode())
    assert not RightsRequest.objects.exists()
    answer = client.post("/privacy/correction/", {"field": "birth_date", "value": "1991-02-03"})
    assert answer.status_code == 302
    assert RightsRequest.objects.get().kind == "rectification"
