import pytest

from partners.services import pairwise_ids_for, partner_client_create, partner_credential_create
from profiles.gate import Actor

ACTOR = Actor.system("test")


@pytest.fixture
def make_client(profile_schema):
    """A partner client with a credential; returns (client, key)."""

    def make(slug: str = "mailer", *, purposes=("email-marketing",), fields=("given_name",), **attrs):
        client = partner_client_create(
            slug=slug, name=slug.title(), actor=ACTOR, purposes=list(purposes), fields=list(fields), **attrs
        )
        _, key = partner_credential_create(client=client, name="test", actor=ACTOR)
        return client, key

    return make


@pytest.fixture
def partner(client):
    """A test client (HTTP) calling as a partner: `partner(key).get(url)`."""

    def as_partner(key: str):
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        return client

    return as_partner


def pairwise(client, person) -> str:
    return pairwise_ids_for(client=client, subject_ids=[person.pk])[person.pk]


@pytest.fixture
def receiver():
    """A webhook receiver on loopback (tests/partners/receiver.py)."""
    from tests.partners.receiver import serve

    receiving, server = serve()
    yield receiving
    server.shutdown()
    server.server_close()


@pytest.fixture
def make_receiver_client(make_client, receiver):
    """A client whose webhooks go to `receiver`; returns (client, key, signing secret)."""
    from partners.services import partner_client_update, partner_webhook_secret_rotate

    def make(slug: str = "mailer", **attrs):
        client, key = make_client(slug, **attrs)
        partner_client_update(client=client, actor=ACTOR, webhook_url=receiver.url)
        secret = partner_webhook_secret_rotate(client=client, actor=ACTOR)
        return client, key, secret

    return make


@pytest.fixture(autouse=True)
def eager_tasks():
    """The partners jobs (segment computation, webhook fan-out and sending) run in the test's
    process, whatever broker the run has (tests/vault/test_celery.py covers the round trip
    through a real broker)."""
    from config.celery import app

    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    app.conf.update(task_always_eager=before[0], task_eager_propagates=before[1])
