"""gunicorn's own log lines (gunicorn.conf.py): through the personal-data filter, and an access
log without client addresses, query strings, user agents or referrers."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, **headers: str) -> int:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (http, our own server)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_gunicorn_logs_through_the_personal_data_filter(vault_keys, tmp_path):
    port = free_port()
    # The server reads its settings from the environment: this test's keys, and a database of
    # its own (the requests made here never reach one).
    env = {**os.environ, "VAULT_KEKS_FILE": str(vault_keys), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--no-control-socket",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(100):  # up to 20 s to boot
            try:
                status = get(f"http://127.0.0.1:{port}/.well-known/gpc.json")
                break
            except OSError:
                time.sleep(0.2)
        else:
            server.terminate()
            raise AssertionError(f"gunicorn did not start: {server.communicate(timeout=30)[1][-2000:]}")
        assert status == 200
        missing = get(
            f"http://127.0.0.1:{port}/nope/ada@example.com/?email=ada@example.com&phone=%2B31612345678",
            **{
                "User-Agent": "Browser of Ada Lovelace",
                "Referer": "https://example.com/?who=ada",
                "X-Request-ID": "req-12345678",
            },
        )
        assert missing == 404
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    logged = out + err
    assert "gunicorn.access: GET /.well-known/gpc.json 200" in logged
    assert "GET /nope/[email]/ 404" in logged and "request_id=req-12345678" in logged
    for personal in ("ada@example.com", "31612345678", "Ada Lovelace", "who=ada", "127.0.0.1"):
        assert personal not in logged, personal
