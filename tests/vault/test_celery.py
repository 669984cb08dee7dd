"""A real worker against the configured broker (CELERY_BROKER_URL), or Celery's in-memory
transport when none is set, running a task end to end through the database."""

import pytest
from celery.backends.base import DisabledBackend
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from config.celery import app
from vault.tasks import ping


def _result_backend(broker_url: str) -> str:
    if broker_url.startswith(("redis://", "rediss://")):
        return broker_url
    if broker_url.startswith(("amqp://", "pyamqp://")):
        return "rpc://"
    return "cache+memory://"


def _forget_disabled_result_backend() -> None:
    """Celery caches the result backend it first built: "disabled" if a task ran before any
    backend was configured. Drop only that one; a working backend is kept, because a second
    RPC backend would compete with the first for the same reply queue."""
    if isinstance(app.backend, DisabledBackend):
        app._backend_cache = None  # type: ignore[attr-defined]
        app._local.__dict__.pop("backend", None)  # type: ignore[attr-defined]


@pytest.fixture
def worker(transactional_db):
    broker_url = settings.CELERY_BROKER_URL
    app.conf.update(task_always_eager=False, result_backend=_result_backend(broker_url))
    _forget_disabled_result_backend()
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            yield broker_url
    finally:
        app.conf.update(task_always_eager=settings.CELERY_TASK_ALWAYS_EAGER, result_backend=None)


@pytest.mark.e2e
@pytest.mark.slow
def test_a_worker_runs_a_task_end_to_end(worker):
    answer = ping.delay().get(timeout=30)
    assert answer["pong"] is True
    assert answer["database"] is True


def test_tasks_are_acknowledged_late_and_json_only():
    assert ping.acks_late is True
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert ping.max_retries and ping.retry_backoff


@pytest.mark.e2e
@pytest.mark.slow
def test_tasks_carry_the_request_id_of_their_caller(worker):
    from vault.log import request_id_var

    token = request_id_var.set("req-1234567890")
    try:
        result = ping.delay()
    finally:
        request_id_var.reset(token)
    assert result.get(timeout=30)["request_id"] == "req-1234567890"


@pytest.mark.django_db
def test_an_eager_task_leaves_its_callers_request_id_alone(settings):
    from vault.log import request_id_var

    if not settings.CELERY_TASK_ALWAYS_EAGER:
        app.conf.task_always_eager = True
    token = request_id_var.set("req-caller-0001")
    try:
        assert ping.delay().get()["request_id"] == "req-caller-0001"
        assert request_id_var.get() == "req-caller-0001"
    finally:
        request_id_var.reset(token)
        app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER
