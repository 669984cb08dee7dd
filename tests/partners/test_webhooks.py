"""Webhooks (partners/services/webhooks.py): the outbox fanned out per client within its scope,
signed as Standard Webhooks says, sent with backoff, failed after N attempts, replayed from the
admin; an erasure makes the partners app forget the person."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from consent.models import Method
from consent.services import consent_withdraw
from partners.models import PairwiseId, PreferenceToken, WebhookDelivery, WebhookStatus
from partners.services import (
    webhook_backoff,
    webhook_deliveries_dispatch,
    webhook_deliveries_send,
    webhooks_fanout,
)
from partners.tasks import webhooks_fanout as fanout_task
from tests.factories import fill, grant
from tests.partners.conftest import pairwise
from vault.models import AuditEntry, OutboxEvent
from vault.outbox import outbox_emit

pytestmark = pytest.mark.django_db


def _sent(receiver):
    """The bodies the receiver got, parsed."""
    return [json.loads(body) for _, body in receiver.received]


# --- What the lower apps announce --------------------------------------------------------------


def test_consent_changes_and_profile_writes_reach_the_outbox_as_ids_and_names(alice, profile_schema):
    grant(alice, "analytics")
    grant(alice, "analytics")  # a renewal changes nothing: no second announcement
    consent_withdraw(subject_id=alice.pk, purpose="analytics", method=Method.WEB_FORM)
    fill(alice, given_name="Alicia", city="Utrecht")
    changes = [e.payload for e in OutboxEvent.objects.filter(topic="consent.changed")]
    assert changes == [
        {"subject_id": str(alice.pk), "purpose": "analytics", "status": "granted"},
        {"subject_id": str(alice.pk), "purpose": "analytics", "status": "withdrawn"},
    ]
    (update,) = OutboxEvent.objects.filter(topic="profile.updated")
    assert update.payload == {"subject_id": str(alice.pk), "fields": ["given_name", "city"]}
    assert "Alicia" not in json.dumps(update.payload)


# --- Signatures and scope ------------------------------------------------------------------------


def test_a_consent_change_is_signed_as_standard_webhooks_says(alice, make_receiver_client, receiver):
    mailer, _, secret = make_receiver_client(purposes=["loyalty-programme"])
    grant(alice, "loyalty-programme")
    made = webhooks_fanout()
    assert webhook_deliveries_send(delivery_ids=made) == {"delivered": 1, "retrying": 0}
    ((headers, body),) = receiver.received
    assert headers["webhook-id"].startswith("msg_")
    payload = Webhook(secret).verify(body, headers)  # raises on a bad signature or timestamp
    assert payload["type"] == "consent.changed"
    assert payload["data"] == {"person": pairwise(mailer, alice), "purpose": "loyalty-programme", "status": "granted"}
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (WebhookStatus.DELIVERED, 1, 204)
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 43 + "=").verify(body, headers)


def test_consent_changes_go_only_to_clients_holding_the_purpose(alice, bob, make_receiver_client, receiver):
    mailer, _, _ = make_receiver_client("mailer", purposes=["loyalty-programme"])
    make_receiver_client("analyst", purposes=["analytics"])
    grant(alice, "loyalty-programme")
    grant(bob, "personalization")  # no client holds it
    webhooks_fanout()
    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.client == mailer
    assert delivery.payload["person"] == pairwise(mailer, alice)


def test_a_withdrawal_goes_only_to_clients_that_know_the_person(alice, bob, make_receiver_client):
    make_receiver_client(purposes=["loyalty-programme"])
    grant(alice, "loyalty-programme")
    webhooks_fanout()
    consent_withdraw(subject_id=alice.pk, purpose="loyalty-programme", method=Method.WEB_FORM)
    stranger = {"subject_id": bob.pk, "purpose": "loyalty-programme", "status": "withdrawn"}
    outbox_emit(topic="consent.changed", payload=stranger)
    webhooks_fanout()
    payloads = [d.payload for d in WebhookDelivery.objects.order_by("created_at")]
    assert [p["status"] for p in payloads] == ["granted", "withdrawn"]
    assert not PairwiseId.objects.filter(subject_id=bob.pk).exists()  # a stranger is not introduced


def test_profile_updates_name_only_fields_in_scope_that_the_person_allows(alice, bob, make_receiver_client):
    mailer, _, _ = make_receiver_client("mailer", purposes=["loyalty-programme"], fields=["given_name", "family_name"])
    shop, _, _ = make_receiver_client("shop", purposes=["personalization"], fields=["given_name"])
    grant(alice, "loyalty-programme")
    pairwise(mailer, alice), pairwise(shop, alice)  # both know her; only the mailer has her consent
    pairwise(mailer, bob)
    webhooks_fanout()
    WebhookDelivery.objects.all().delete()
    fill(alice, given_name="Alicia", city="Utrecht", family_name="Liddell")
    fill(bob, given_name="Robert")  # no consent to the loyalty programme: nothing about him
    webhooks_fanout()
    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.client == mailer
    assert delivery.event_type == "profile.updated"
    assert delivery.payload == {"person": pairwise(mailer, alice), "fields": ["given_name", "family_name"]}
    assert "Alicia" not in json.dumps(delivery.payload) and "Liddell" not in json.dumps(delivery.payload)


def test_an_event_claimed_twice_is_fanned_out_once(alice, make_receiver_client):
    make_receiver_client(purposes=["loyalty-programme"])
    grant(alice, "loyalty-programme")
    webhooks_fanout()
    OutboxEvent.objects.update(delivered_at=None, claimed_until=None)  # a worker died before its mark
    webhooks_fanout()
    assert WebhookDelivery.objects.count() == 1


# --- Erasure ---------------------------------------------------------------------------------------


def test_an_erasure_is_announced_then_the_person_is_forgotten(alice, bob, make_receiver_client, receiver):
    mailer, _, secret = make_receiver_client("mailer", purposes=["loyalty-programme"])
    shop, _, _ = make_receiver_client("shop", purposes=["personalization"])
    known = pairwise(mailer, alice)
    pairwise(mailer, bob)
    PreferenceToken.objects.create(token="t", subject_id=alice.pk)
    outbox_emit(topic="subject.erased", payload={"subject_id": alice.pk})
    fanout_task()  # the beat task: fan out, then send
    (delivery,) = WebhookDelivery.objects.all()
    assert (delivery.client, delivery.event_type, delivery.payload) == (mailer, "subject.erased", {"person": known})
    assert delivery.status == WebhookStatus.DELIVERED
    ((headers, body),) = receiver.received
    assert Webhook(secret).verify(body, headers)["data"] == {"person": known}
    assert not PairwiseId.objects.filter(subject_id=alice.pk).exists()
    assert not PreferenceToken.objects.filter(subject_id=alice.pk).exists()
    assert PairwiseId.objects.filter(subject_id=bob.pk).exists()
    assert shop.webhook_deliveries.count() == 0  # it never knew her


# --- Delivery: backoff, failure, timeouts ----------------------------------------------------------


def test_the_backoff_doubles_up_to_its_cap(settings):
    settings.PARTNERS_WEBHOOK_BACKOFF_SECONDS = 30
    settings.PARTNERS_WEBHOOK_MAX_DELAY_SECONDS = 3600
    delays = [webhook_backoff(attempts=n).total_seconds() for n in range(1, 10)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def _due_now():
    WebhookDelivery.objects.filter(status=WebhookStatus.PENDING).update(next_attempt_at=timezone.now())


def test_a_5xx_is_retried_with_backoff_then_marked_failed(settings, alice, make_receiver_client, receiver):
    settings.PARTNERS_WEBHOOK_MAX_ATTEMPTS = 3
    make_receiver_client(purposes=["loyalty-programme"])
    receiver.answers = [500, 503, 502]
    grant(alice, "loyalty-programme")
    webhooks_fanout()
    before = timezone.now()
    assert webhook_deliveries_send() == {"delivered": 0, "retrying": 1}
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (WebhookStatus.PENDING, 1, 500)
    assert delivery.last_error == "http_500"
    assert delivery.next_attempt_at >= before + timedelta(seconds=settings.PARTNERS_WEBHOOK_BACKOFF_SECONDS)
    assert webhook_deliveries_send() == {"delivered": 0, "retrying": 0}  # not due yet
    _due_now()
    webhook_deliveries_send()
    _due_now()
    webhook_deliveries_send()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (WebhookStatus.FAILED, 3, 502)
    assert len(receiver.received) == 3
    _due_now()
    assert webhook_deliveries_send() == {"delivered": 0, "retrying": 0}  # failed for good


def test_a_timeout_is_retried(settings, alice, make_receiver_client, receiver):
    settings.PARTNERS_WEBHOOK_READ_TIMEOUT = 1
    make_receiver_client(purposes=["loyalty-programme"])
    receiver.answers = ["sleep", 204]
    grant(alice, "loyalty-programme")
    webhooks_fanout()
    webhook_deliveries_send()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.last_error, delivery.last_status_code) == (WebhookStatus.PENDING, "timeout", None)
    _due_now()
    webhook_deliveries_send()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (WebhookStatus.DELIVERED, 2)
    # Both attempts carried the same webhook-id: the receiver can tell a retry.
    assert receiver.received[0][0]["webhook-id"] == receiver.received[1][0]["webhook-id"]


def test_an_unreachable_endpoint_is_a_connection_error(alice, make_receiver_client):
    from partners.services import partner_client_update
    from tests.partners.conftest import ACTOR

    mailer, _, _ = make_receiver_client(purposes=["loyalty-programme"])
    partner_client_update(client=mailer, actor=ACTOR, webhook_url="http://127.0.0.1:9/closed")
    grant(alice, "loyalty-programme")
    webhooks_fanout()
    webhook_deliveries_send()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.last_error) == (WebhookStatus.PENDING, "connection")


def test_a_delivery_is_claimed_by_one_sender_only(alice, make_receiver_client, receiver):
    make_receiver_client(purposes=["loyalty-programme"])
    grant(alice, "loyalty-programme")
    webhooks_fanout()
    from partners.services.webhooks import _claim

    assert len(_claim(None, 10)) == 1
    assert _claim(None, 10) == []  # claimed: its next attempt moved past one attempt's time


def test_requests_never_send_webhooks_themselves(settings, django_capture_on_commit_callbacks, monkeypatch):
    """Without a broker the beat task sends; with one, a worker does, after the commit."""
    from partners.services import webhooks

    sent = []
    monkeypatch.setattr(webhooks.current_app, "send_task", lambda name, kwargs: sent.append((name, kwargs)))
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with django_capture_on_commit_callbacks(execute=True):
        webhook_deliveries_dispatch(["00000000-0000-0000-0000-000000000001"])
    assert sent == []
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        webhook_deliveries_dispatch(["00000000-0000-0000-0000-000000000001"])
    assert sent == []  # nothing before the commit
    callbacks[0]()
    assert sent == [("partners.webhooks_send", {"delivery_ids": ["00000000-0000-0000-0000-000000000001"]})]


# --- Replay from the admin ---------------------------------------------------------------------------


def _failed_delivery(settings, alice, make_receiver_client, receiver):
    settings.PARTNERS_WEBHOOK_MAX_ATTEMPTS = 1
    make_receiver_client(purposes=["loyalty-programme"])
    receiver.answers = [500]
    grant(alice, "loyalty-programme")
    webhooks_fanout()
    webhook_deliveries_send()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookStatus.FAILED
    return delivery


def test_staff_replay_a_failed_delivery_from_the_admin(settings, alice, make_receiver_client, receiver, admin_client):
    delivery = _failed_delivery(settings, alice, make_receiver_client, receiver)
    answer = admin_client.post(
        "/admin/partners/webhookdelivery/", {"action": "replay", "_selected_action": [str(delivery.pk)]}
    )
    assert answer.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (WebhookStatus.PENDING, 0, "")
    assert AuditEntry.objects.filter(action="partners.webhook_replay", fields=["client.mailer"]).exists()
    time.sleep(0.01)
    assert webhook_deliveries_send() == {"delivered": 1, "retrying": 0}
    assert receiver.received[0][0]["webhook-id"] == receiver.received[1][0]["webhook-id"]


def test_staff_without_the_change_permission_cannot_replay(settings, alice, make_receiver_client, receiver, client):
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    delivery = _failed_delivery(settings, alice, make_receiver_client, receiver)
    viewer = UserFactory.create(email="viewer@example.com", staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhookdelivery"))
    client.force_login(viewer)
    page = client.get("/admin/partners/webhookdelivery/")
    assert page.status_code == 200
    assert b'value="replay"' not in page.content
    client.post("/admin/partners/webhookdelivery/", {"action": "replay", "_selected_action": [str(delivery.pk)]})
    delivery.refresh_from_db()
    assert delivery.status == WebhookStatus.FAILED


def test_the_delivery_log_keeps_pending_deliveries_past_its_retention(alice, make_receiver_client, receiver):
    from partners.services import webhook_log_purge

    make_receiver_client(purposes=["loyalty-programme"])
    grant(alice, "loyalty-programme", "analytics")
    outbox_emit(topic="subject.erased", payload={"subject_id": alice.pk})
    webhooks_fanout()
    first = WebhookDelivery.objects.get(event_type="consent.changed")
    webhook_deliveries_send(delivery_ids=[first.pk])
    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(days=31))
    assert webhook_log_purge(days=30) == 1  # the delivered one; the pending erasure stays
    assert list(WebhookDelivery.objects.values_list("event_type", flat=True)) == ["subject.erased"]


def test_a_malformed_outbox_event_is_skipped_not_retried_for_ever(alice, make_receiver_client):
    make_receiver_client(purposes=["loyalty-programme"])
    outbox_emit(topic="subject.erased", payload={})
    outbox_emit(topic="consent.changed", payload={"subject_id": "not-a-uuid"})
    grant(alice, "loyalty-programme")
    webhooks_fanout()
    assert not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()
    assert WebhookDelivery.objects.get().payload["status"] == "granted"
