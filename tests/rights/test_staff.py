"""The staff side outside the API: the admin queue and its act form, and the daily digest."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from profiles.gate import Actor
from rights.models import RightsRequest
from rights.services import rights_digest_send, rights_request_submit
from vault.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def erasure(alice, profile_schema):
    return rights_request_submit(
        subject_id=alice.pk,
        kind="erasure",
        channel="portal",
        verification="reauthentication",
        actor=Actor.person(alice.pk),
        confirm=True,
    )


def test_the_digest_lists_overdue_and_due_soon_requests_without_personal_data(settings, erasure, alice):
    settings.RIGHTS_DIGEST_TO = ["privacy-team@example.com"]
    assert rights_digest_send() == {"sent": False, "requests": 0}  # due in a month: nothing yet
    RightsRequest.objects.filter(pk=erasure.pk).update(due_at=timezone.now() - timedelta(days=1))
    assert rights_digest_send() == {"sent": True, "requests": 1}
    (message,) = mail.outbox
    assert message.to == ["privacy-team@example.com"]
    assert str(erasure.pk) in message.body and "OVERDUE" in message.body
    assert "alice" not in message.body and str(alice.pk) not in message.body


def test_no_digest_without_an_address(settings, erasure):
    settings.RIGHTS_DIGEST_TO = []
    RightsRequest.objects.filter(pk=erasure.pk).update(due_at=timezone.now())
    assert rights_digest_send()["sent"] is False
    assert not mail.outbox


def test_the_admin_queue_and_its_act_form(client, staff, erasure):
    from django.contrib.auth.models import Permission

    client.force_login(staff)
    staff.is_superuser = False
    staff.save()
    staff.user_permissions.add(Permission.objects.get(codename="view_rightsrequest"))
    queue = client.get("/admin/rights/rightsrequest/")
    assert queue.status_code == 200
    assert "Erasure" in queue.content.decode()
    act = f"/admin/rights/rightsrequest/{erasure.pk}/act/"
    assert client.get(act).status_code == 403, "viewing is not acting"
    staff.user_permissions.add(Permission.objects.get(codename="handle_rightsrequest"))
    refused = client.post(act, {"step": "hold", "text": ""})
    assert refused.status_code == 200 and "Give a reason" in refused.content.decode()
    done = client.post(act, {"step": "hold", "text": "Litigation pending"})
    assert done.status_code == 302
    assert RightsRequest.objects.get(pk=erasure.pk).legal_hold
    assert AuditEntry.objects.filter(action="rights.hold", actor_type="staff").exists()
