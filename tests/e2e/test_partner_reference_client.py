"""The reference e-mail client (examples/email_sync.py) against the live server: it pulls its
audience through the partner API, and an erasure in the vault reaches its webhook receiver,
signed, and deletes its local copy."""

import json
import time

import pytest
import requests

from examples.email_sync import MailingList, Vault, audience_pull, engagement_event, engagement_post, serve
from partners.models import PairwiseId, WebhookDelivery, WebhookStatus
from partners.services import (
    partner_client_create,
    partner_client_update,
    partner_credential_create,
    partner_webhook_secret_rotate,
)
from partners.tasks import webhooks_fanout
from profiles.gate import Actor
from rights.services import erasure_now
from tests.factories import grant
from tests.partners.conftest import ACTOR

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(autouse=True)
def eager_tasks():
    """The vault's jobs (erasure, webhook fan-out and sending) run in the server's process,
    whatever broker the run has: this test is about the client, not the broker."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


PURPOSE = "loyalty-programme"


@pytest.fixture
def mailer(profile_schema, committed_db):
    client = partner_client_create(
        slug="mailer", name="Mailer", actor=ACTOR, purposes=[PURPOSE], fields=[], record_kinds=["email_engagement"]
    )
    _, key = partner_credential_create(client=client, name="e2e", actor=ACTOR)
    secret = partner_webhook_secret_rotate(client=client, actor=ACTOR)
    mailing_list = MailingList()
    server = serve(mailing_list, secret)
    partner_client_update(client=client, actor=ACTOR, webhook_url=f"http://127.0.0.1:{server.server_address[1]}/")
    yield client, key, mailing_list, server
    server.shutdown()
    server.server_close()


def test_an_erasure_reaches_the_reference_client_and_deletes_its_copy(live_server, mailer, alice, bob):
    client, key, mailing_list, _ = mailer
    vault = Vault(live_server.url, key)
    grant(alice, PURPOSE)
    grant(bob, PURPOSE)
    webhooks_fanout()  # what Celery beat runs: consent.changed to the client's receiver
    assert len(mailing_list.people()) == 2
    assert len(audience_pull(vault, mailing_list, PURPOSE)) == 2  # through the live consent check
    # Engagement needs the person's e-mail marketing consent (a double opt-in they never gave
    # here): the batch is read, and each item refused as an unknown person, nothing stored.
    events = [engagement_event(person, "open", "spring-sale") for person in mailing_list.people()]
    posted = engagement_post(vault, events, batch_key="e2e-1")
    assert (posted["accepted"], posted["refused"]) == (0, 2)
    assert {r["code"] for r in posted["refusals"]} == {"unknown_person"}

    erasure_now(subject_id=alice.pk, actor=Actor.system("e2e"), note="verified in person")
    theirs = PairwiseId.objects.get(client=client, subject_id=bob.pk).pairwise
    webhooks_fanout()

    erased = WebhookDelivery.objects.get(event_type="subject.erased")
    assert erased.status == WebhookStatus.DELIVERED  # the receiver verified the signature and answered 204
    assert mailing_list.people() == [theirs]  # Alice's copy is gone, Bob's stays
    assert not PairwiseId.objects.filter(subject_id=alice.pk).exists()
    assert audience_pull(vault, mailing_list, PURPOSE) == [theirs]


def test_the_reference_client_refuses_an_unsigned_webhook(mailer, alice):
    client, _, mailing_list, _ = mailer
    grant(alice, PURPOSE)
    webhooks_fanout()
    (person,) = mailing_list.people()
    body = json.dumps({"type": "subject.erased", "data": {"person": person}})
    headers = {"webhook-id": "msg_forged", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,AAAA"}
    answer = requests.post(client.webhook_url, data=body, headers=headers, timeout=5)
    assert answer.status_code == 400
    assert mailing_list.people() == [person]
