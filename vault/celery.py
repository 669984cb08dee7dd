"""The base of every Celery task, and the signals that carry a request id across the broker.

`VaultTask` is retried with exponential backoff on transient errors (database or network
connection trouble), runs in a key scope, and carries the request id of whoever enqueued it so
that a task's log lines can be joined to the request's. The Celery app itself lives in
`config/celery.py`; apps declare tasks with `shared_task`.
"""

from typing import Any

from celery import Task, signals
from django.db import InterfaceError, OperationalError

from vault.log import new_request_id, request_id_var


class VaultTask(Task):
    autoretry_for = (ConnectionError, TimeoutError, OperationalError, InterfaceError)
    retry_backoff = 2
    retry_backoff_max = 600
    retry_jitter = True
    max_retries = 5
    acks_late = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Each task runs in a key scope, like a request: data keys are unwrapped once per task.
        # Imported here because this module loads before Django's app registry is ready.
        from vault.crypto import key_scope

        with key_scope():
            return super().__call__(*args, **kwargs)


@signals.worker_init.connect
def _check_keys(**kwargs: Any) -> None:
    """A worker without usable keys refuses to start rather than failing every task."""
    from vault.keys import get_provider

    get_provider().self_test()


@signals.before_task_publish.connect
def _attach_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if headers is not None:
        headers.setdefault("request_id", request_id_var.get())


@signals.task_prerun.connect
def _adopt_request_id(task: Task | None = None, **kwargs: Any) -> None:
    """A worker takes the id its caller sent; an eager task (no broker) simply keeps running
    under its caller's id, which must not change for the rest of the caller's request."""
    if task is None or task.request.is_eager:
        return
    incoming = getattr(task.request, "request_id", None)
    task.request.request_id_token = request_id_var.set(incoming or f"task-{new_request_id()}")  # type: ignore[attr-defined]


@signals.task_postrun.connect
def _drop_request_id(task: Task | None = None, **kwargs: Any) -> None:
    token = getattr(task.request, "request_id_token", None) if task is not None else None
    if token is not None:
        request_id_var.reset(token)
