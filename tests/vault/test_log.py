import json
import logging

import pytest

from vault.log import PersonalDataFilter, RequestIdFilter, request_id_var, scrub


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("lookup failed for ada.lovelace+shop@example.co.uk", "ada.lovelace"),
        ("sms to +44 20 7946 0958 bounced", "7946"),
        ("call 0612345678 failed", "0612345678"),
        ("client 203.0.113.42 rejected", "203.0.113.42"),
        ("client 2001:db8:85a3::8a2e:370:7334 rejected", "8a2e:370:7334"),
        ("born 1990-04-12", "1990-04-12"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload", "eyJhbGciOiJIUzI1NiJ9"),
        ("password=hunter2hunter2", "hunter2"),
        ("cannot connect to amqp://vault:s3cr3t-pw@rabbit:5672//", "s3cr3t-pw"),
        ("GET /consent/confirm/eyJhIjoxfQ:1tXyZ:abc/ 400", "eyJhIjoxfQ"),
    ],
)
def test_scrub_removes_personal_data(text, leaked):
    assert leaked not in scrub(text)


@pytest.mark.parametrize(
    "text",
    [
        "Rewrapped 512 data keys in 0.8 s for subject 9c1f3a3e-0d7b-4c52-9a51-6a1f0b7f2d11",
        'checkpoint {"signed_at": "2026-11-28T19:07:53.976123+00:00", "seq": 12345678}',
        "signature 25GKGfnmp83S6T4sr2Rn/12345678/AWG4FNK+90123456== hash 12345678abcdef00",
        "took 12345.678901 ms",
    ],
)
def test_scrub_keeps_ordinary_text(text):
    assert scrub(text) == text


def _emit(logger_name: str, formatter: logging.Formatter, emit) -> str:
    """Log through a handler built like settings.LOGGING's console handler."""
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Capture()
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(PersonalDataFilter())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # independent of what other tests did to the root logger
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    return "\n".join(records)


def test_log_lines_carry_no_personal_data_from_args_extra_or_exceptions():
    from pythonjsonlogger.json import JsonFormatter

    def emit(logger):
        logger.warning("signup failed for %s", "ada@example.com", extra={"phone": "+31 6 1234 5678"})
        try:
            raise ValueError("duplicate key value (email)=(grace@example.com)")
        except ValueError:
            logger.exception("insert failed")

    output = _emit("tests.pii", JsonFormatter("%(levelname)s %(message)s %(request_id)s"), emit)
    assert "ada@example.com" not in output
    assert "1234 5678" not in output
    assert "grace@example.com" not in output
    assert "[email]" in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert lines[0]["message"] == "signup failed for [email]"
    assert "ValueError" in lines[1]["exc_info"]


def test_log_lines_carry_the_request_id(client, db, caplog):
    def emit(logger):
        token = request_id_var.set("abcdef1234567890")
        try:
            logger.info("inside a request")
        finally:
            request_id_var.reset(token)

    output = _emit("tests.rid", logging.Formatter("%(request_id)s %(message)s"), emit)
    assert output == "abcdef1234567890 inside a request"


def test_responses_carry_a_request_id(client, db):
    generated = client.get("/healthz")["X-Request-ID"]
    assert len(generated) == 32
    assert client.get("/healthz", headers={"X-Request-ID": "lb-0123456789"})["X-Request-ID"] == "lb-0123456789"
    forged = client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})["X-Request-ID"]
    assert forged != "<script>alert(1)</script>"


@pytest.mark.slow
def test_production_logs_are_json_lines(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "VAULT_", "LOG_"))}
    env.update(LOG_FORMAT="json", VAULT_VAR_DIR=str(tmp_path))
    code = "import logging, django; django.setup(); logging.getLogger('x').warning('mail to ada@example.com')"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["level"] == "WARNING"
    assert line["message"] == "mail to [email]"
    assert line["request_id"] == "-"


def _production_formatter():
    """The JSON formatter exactly as settings.LOGGING builds it in production."""
    from logging.config import DictConfigurator

    from django.conf import settings

    return DictConfigurator({}).configure_formatter(dict(settings.LOGGING["formatters"]["json"]))


def test_django_request_lines_carry_no_query_string_and_keep_the_request_id(client, db):
    """django.request attaches the request object; its repr carries the whole query string."""
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Capture()
    handler.setFormatter(_production_formatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(PersonalDataFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        query = {"email": "ada@example.com", "phone": "+31612345678", "born": "1990-04-12", "name": "Lovelace"}
        response = client.get("/api/v1/me/", query, headers={"X-Request-ID": "probe-0123456789"})
    finally:
        logger.removeHandler(handler)
    assert response.status_code in (401, 403)
    assert records, "Django logs the refused request"
    line = json.loads(records[-1])
    for value in query.values():
        assert value not in records[-1]
    assert line["request"] == "GET /api/v1/me/"
    assert line["request_id"] == "probe-0123456789"


def test_every_extra_field_is_scrubbed_objects_included():
    class Opaque:
        def __repr__(self):
            return "<Opaque owner=ada@example.com>"

    def emit(logger):
        logger.warning(
            "x", extra={"thing": Opaque(), "nested": {"to": ["grace@example.com"], "n": 3}, "when": "1990-04-12"}
        )

    output = _emit("tests.objects", _production_formatter(), emit)
    assert "@example.com" not in output
    assert "1990-04-12" not in output
    line = json.loads(output)
    assert line["nested"] == {"to": ["[email]"], "n": 3}
