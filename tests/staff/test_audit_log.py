"""The audit log viewer: entries as stored (names and opaque ids, no values), newest first,
filtered by actor, action, purpose and time, with bad filters as form errors; "Verify chain"
runs the chain's verification for those allowed, finds a tampered entry, and is audited."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import set_audit_triggers
from vault.audit import audit_record
from vault.models import AuditEntry

LOG = "admin:staff_audit_log"
VERIFY = "admin:staff_audit_verify"


@pytest.fixture
def entries(db):
    """Three entries: a staff read about someone, a partner's read, a system job."""
    subject = uuid.uuid4()
    audit_record(
        actor_type="staff",
        actor_id="staff-1",
        action="profile.read",
        purpose="support",
        fields=["email"],
        subject_id=subject,
    )
    audit_record(actor_type="partner", actor_id="mailer", action="profile.read", purpose="email-marketing")
    audit_record(actor_type="system", actor_id="retention", action="retention.run")
    return subject


def _seqs(response) -> list[int]:
    return [entry.seq for entry in response.context["page"].object_list]


def test_the_auditor_pages_through_entries_newest_first(client, member_of, entries):
    client.force_login(member_of("Auditor"))
    response = client.get(reverse(LOG))
    assert response.status_code == 200
    assert _seqs(response) == [3, 2, 1]
    html = response.content.decode()
    pseudonym = str(AuditEntry.objects.get(seq=1).subject_pseudonym)
    assert pseudonym in html and str(entries) not in html  # the subject as its pseudonym only
    assert reverse(VERIFY) in html  # the auditor may verify


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"actor_type": "partner"}, [2]),
        ({"actor_id": "staff-1"}, [1]),
        ({"action": "profile.read"}, [2, 1]),
        ({"action": "retention."}, [3]),
        ({"purpose": "support"}, [1]),
        ({"since": (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%d")}, []),
        ({"until": (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%d"), "actor_type": "system"}, [3]),
    ],
)
def test_filters(client, member_of, entries, filters, expected):
    client.force_login(member_of("Privacy officer"))
    assert _seqs(client.get(reverse(LOG), filters)) == expected


@pytest.mark.parametrize(
    "filters",
    [
        {"since": "yesterday"},
        {"until": "2026-13-45"},
        {"actor_type": "alien"},
        {"since": "2026-02-02", "until": "2026-02-01"},
    ],
)
def test_bad_filters_are_form_errors(client, member_of, entries, filters):
    client.force_login(member_of("Auditor"))
    response = client.get(reverse(LOG), filters)
    assert response.status_code == 200
    assert response.context["page"] is None
    assert b"errorlist" in response.content


def test_pages_keep_the_filters(client, member_of, db):
    for number in range(55):
        audit_record(actor_type="system", actor_id="job", action="test.tick", fields=[f"f{number}"])
    client.force_login(member_of("Auditor"))
    first = client.get(reverse(LOG), {"action": "test.tick"})
    assert len(first.context["page"].object_list) == 50
    assert "action=test.tick&amp;page=2" in first.content.decode()
    second = client.get(reverse(LOG), {"action": "test.tick", "page": "2"})
    assert _seqs(second) == [5, 4, 3, 2, 1]


@pytest.mark.parametrize("role", ["Support agent", "Marketer", "Schema editor", "Key administrator"])
def test_others_cannot_read_the_log(client, member_of, role, entries):
    client.force_login(member_of(role))
    assert client.get(reverse(LOG)).status_code == 403


def test_verifying_an_intact_chain_is_audited(client, member_of, entries):
    auditor = member_of("Auditor")
    client.force_login(auditor)
    response = client.post(reverse(VERIFY))
    assert response.status_code == 200
    assert "OK: 3 entries intact" in response.content.decode()
    entry = AuditEntry.objects.get(action="audit.verify_ok")
    assert (entry.actor_type, entry.actor_id) == ("staff", str(auditor.pk))


def test_a_tampered_entry_fails_verification(client, member_of, entries):
    set_audit_triggers(enabled=False)  # what an attacker with the owner's rights does first (PostgreSQL)
    try:
        AuditEntry.objects.filter(seq=2).update(purpose="analytics")
    finally:
        set_audit_triggers(enabled=True)
    officer = member_of("Privacy officer")
    client.force_login(officer)
    html = client.post(reverse(VERIFY)).content.decode()
    assert "FAILED at entry 2 (altered)" in html
    assert AuditEntry.objects.filter(action="audit.verify_failed", actor_id=str(officer.pk)).count() == 1


def test_verifying_needs_its_permission_and_a_post(client, member_of, entries):
    client.force_login(member_of("Support agent"))
    assert client.post(reverse(VERIFY)).status_code == 403
    client.force_login(member_of("Key administrator"))
    assert client.get(reverse(VERIFY)).status_code == 405
    assert client.post(reverse(VERIFY)).status_code == 200
    assert not AuditEntry.objects.filter(action="audit.verify_failed").exists()
