"""The Celery app (`celery -A config worker`). Configuration comes from Django settings (the
CELERY_ names); every task's base is `vault.celery.VaultTask` (retries, key scope, request id).
Apps declare their tasks with `shared_task`, so none of them imports this module."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("vault", task_cls="vault.celery:VaultTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
