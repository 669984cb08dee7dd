from typing import Any

from django.db import connection

from vault.celery import app
from vault.log import request_id_var


@app.task(name="vault.ping")
def ping() -> dict[str, Any]:
    """A round trip through broker, worker and database: `celery -A vault call vault.ping`.

    Answers with the request id the worker adopted, which shows ids crossing the broker.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (one,) = cursor.fetchone()
    return {"pong": True, "database": one == 1, "request_id": request_id_var.get()}
