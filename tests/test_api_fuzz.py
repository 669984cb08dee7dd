"""Schemathesis over every operation of the OpenAPI schema, as a stranger, a signed-in person
and staff with MFA: no server error, no response that breaks the schema, no undocumented status code, and
the error envelope on every 4xx. New endpoints are covered without touching this file.

Requests go through the WSGI application in-process (no network), inside the test's database
transaction. Examples per operation are bounded (`FUZZ_EXAMPLES`, default 8) so CI stays fast;
run with a larger number to search harder.
"""

import os
import secrets

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import give_birth_date

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))


def error_envelope(ctx, response, case):
    """Every 4xx carries `{"status": <the status>, "errors": [{"code", "message"[, "param"]}, ...]}`."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} is not the JSON envelope: {response.content[:120]!r}") from None
    assert body["status"] == response.status_code, body
    assert body["errors"], body
    for error in body["errors"]:
        assert set(error) <= {"code", "message", "param"}, error
        assert isinstance(error["code"], str) and error["code"], error
        assert isinstance(error["message"], str) and error["message"], error
    return True


# Operations a caller without a session may use (the schema and docs are served outside
# /api/v1/): Meta's data deletion callback, which answers only a request signed with the app secret.
PUBLIC_OPERATIONS: set[str] = {"/api/v1/providers/facebook/data-deletion/"}

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_envelope,
]


@pytest.fixture(autouse=True)
def _keep_the_test_transaction():
    """Django closes the database connection when a request ends, unless it is its own test
    client that calls: the WSGI calls here would close the connection inside the test's
    transaction (on PostgreSQL). Do as Django's test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _session(user) -> dict[str, dict[str, str]]:
    """A browser session with its CSRF pair, as the portal's own scripts would send."""
    client = Client()
    client.force_login(user)  # staff: the test suite's login hook records the MFA step (tests/conftest.py)
    csrf = secrets.token_hex(16)
    return {
        "cookies": {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf},
        "headers": {"X-CSRFToken": csrf},
    }


@pytest.fixture
def person(alice, profile_schema):
    return _session(give_birth_date(alice))


@pytest.fixture
def staff_member(staff, profile_schema):
    return _session(staff)


# Loaded once, through the application itself (the schema view needs no database). The lazy
# fixture loader of schemathesis 4.32 does not work with pytest 9 (it sets a private node id).
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.slow
@schema.parametrize()
@_SETTINGS
def test_every_operation_as_a_signed_in_person(case, person):
    case.call_and_validate(**person, checks=CHECKS)


@pytest.mark.slow
@schema.parametrize()
@_SETTINGS
def test_every_operation_as_staff_with_mfa(case, staff_member):
    case.call_and_validate(**staff_member, checks=CHECKS)


@pytest.mark.slow
@schema.parametrize()
@_SETTINGS
def test_every_operation_as_a_stranger(case, db):
    """No session at all: every operation answers as documented, in the envelope, and nothing
    about anyone leaves (a 2xx only where the operation is public)."""
    response = case.call_and_validate(checks=CHECKS)
    if 200 <= response.status_code < 300:
        assert case.operation.path in PUBLIC_OPERATIONS, f"{case.operation.path} answered a stranger"
