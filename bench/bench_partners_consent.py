"""The partners consent check served for real (issue 15's target): gunicorn with 2 workers on
PostgreSQL with 100,000 people, loaded from the same machine, against a bare DRF endpoint doing
one indexed lookup served by the same gunicorn (bench/serve/). Runs alternate between the two and
the ratio of the medians is the figure: these machines vary too much for absolute rates."""

import http.client
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from django.db import connection
from django.utils import timezone

from bench.harness import Figure
from consent.models import ConsentState, ConsentStatus, PolicyVersion, Purpose
from partners.services import pairwise_ids_for, partner_client_create, partner_credential_create
from profiles.gate import Actor

PEOPLE = 100_000
PURPOSE = "personalization"
ROOT = Path(__file__).resolve().parents[1]


def _seed() -> tuple[str, str, list[str]]:
    """A client with a key, and 100,000 people known to it by pairwise id, half of whom granted
    the purpose (projection rows written directly: only the reads are measured)."""
    client = partner_client_create(
        slug="bench-shop", name="Bench shop", actor=Actor.system("bench"), purposes=[PURPOSE], rate_limit="999999/s"
    )
    _, key = partner_credential_create(client=client, name="bench", actor=Actor.system("bench"))
    purpose = Purpose.objects.get(slug=PURPOSE)
    version = PolicyVersion.objects.filter(purpose=purpose).order_by("-effective_from").first()
    if version is None:
        from consent.services import policy_version_publish

        version = policy_version_publish(purpose=PURPOSE, label="bench", text="Bench policy.\n")
    subjects = [uuid.uuid4() for _ in range(PEOPLE)]
    now = timezone.now()
    ids: dict[uuid.UUID, str] = {}
    for start in range(0, PEOPLE, 10_000):
        batch = subjects[start : start + 10_000]
        ids |= pairwise_ids_for(client=client, subject_ids=batch)
        ConsentState.objects.bulk_create(
            [
                ConsentState(
                    subject_id=subject,
                    purpose=purpose,
                    status=ConsentStatus.GRANTED if n % 2 else ConsentStatus.WITHDRAWN,
                    policy_version=version,
                    last_seq=1,
                    changed_at=now,
                )
                for n, subject in enumerate(batch)
            ],
            batch_size=5000,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return str(client.pk), key, [ids[s] for s in subjects]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(client_id: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    database = connection.settings_dict  # the bench's test database
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.serve.settings",
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": (
            f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:{database['PORT']}/"
            f"{database['NAME']}"
        ),
        "BENCH_CLIENT_ID": client_id,
    }
    server = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
        [sys.executable, "-m", "gunicorn", "-c", "/dev/null", "-w", "2", "-b", f"127.0.0.1:{port}", "config.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return server, port
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("gunicorn did not start")


def _load(port: int, paths: list[str], headers: dict[str, str], seconds: float, threads: int = 4) -> float:
    """Requests per second that `threads` keep-alive clients get through in `seconds`."""
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def run(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        rng = random.Random(n)  # noqa: S311 (picking paths, not secrets)
        while time.perf_counter() < stop:
            try:
                conn.request("GET", rng.choice(paths), headers=headers)
                answer = conn.getresponse()
                answer.read()
            except OSError:  # a busy machine: reconnect and go on (the request is not counted)
                conn.close()
                continue
            if answer.status != 200:
                raise RuntimeError(f"{answer.status} from the server")
            done[n] += 1

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / (time.perf_counter() - started)


def bench_partners_consent_check(rounds: int = 5, seconds: float = 4.0) -> list[Figure]:
    if connection.vendor != "postgresql":
        return [Figure("partners consent check: needs PostgreSQL (set DATABASE_URL)", 0, "skipped")]
    client_id, key, people = _seed()
    server, port = _serve(client_id)
    try:
        check = [f"/api/v1/partner/people/{p}/consent/{PURPOSE}/" for p in people]
        bare = [f"/bench/bare/{p}/" for p in people]
        auth = {"Authorization": f"Bearer {key}"}
        _load(port, check[:50], auth, 1.0)  # warm both workers: connections, caches
        _load(port, bare[:50], {}, 1.0)
        rates: dict[str, list[float]] = {"check": [], "bare": []}
        for _ in range(rounds):
            rates["bare"].append(_load(port, bare, {}, seconds))
            rates["check"].append(_load(port, check, auth, seconds))
    finally:
        server.terminate()
        server.wait(timeout=10)
    check_rate, bare_rate = statistics.median(rates["check"]), statistics.median(rates["bare"])
    return [
        Figure("bare DRF endpoint, one indexed lookup (median of rounds)", bare_rate, "req/s"),
        Figure("partners consent check (median of rounds)", check_rate, "req/s"),
        Figure("consent check / bare endpoint, 100,000 people", check_rate / bare_rate, "x", at_least=0.70),
    ]
