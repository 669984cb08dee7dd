"""What an access or export bundle holds, gathered part by part (GDPR Art. 15 and 20).

Each collector reads one kind of data about one person and returns plain rows (dicts of JSON
types and datetimes), ready for `formats` to write as JSON and CSV. Everything personal is
decrypted by the gate (`profiles.gate`) for the `data-subject-rights` purpose, which every field
serves and a restriction of processing does not stop; each read writes its own audit entry.
"""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from accounts.selectors import account_email, social_accounts_sealed
from consent.receipts import RECEIPT_EVENTS, consent_receipt, consent_receipt_jws
from consent.selectors import consent_history
from profiles.gate import (
    RIGHTS_PURPOSE,
    Actor,
    profile_history_read,
    profile_read,
    profile_records_count,
    profile_records_read,
    social_account_unseal,
)
from profiles.models import RecordKind
from profiles.selectors import profile_fields_held, unscoped_field_definitions
from rights.models import RightsRequest
from vault.audit.selectors import audit_entries_about
from vault.models import AuditActorType

Row = dict[str, Any]
# Documents and events are decrypted this many at a time (one gate read, one audit entry each).
RECORDS_PAGE = 2000
AUDIT_PAGE = 1000


@dataclass
class ExportParts:
    """One person's data, as the bundle's files present it."""

    subject_id: uuid.UUID
    generated_at: datetime
    account: Row = field(default_factory=dict)
    profile: list[Row] = field(default_factory=list)
    history: list[Row] = field(default_factory=list)
    documents: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)
    consents: list[Row] = field(default_factory=list)
    connected_accounts: list[Row] = field(default_factory=list)
    access_log: list[Row] = field(default_factory=list)
    requests: list[Row] = field(default_factory=list)


def profile_rows(subject_id: uuid.UUID, actor: Actor) -> list[Row]:
    """Each value the person holds with its field's definition, provenance and the purposes the
    field serves. Every field counts, those the portal does not show included: the right of
    access covers all of it. Only the fields that hold a value are asked of the gate, so its
    audit entry names what was read."""
    definitions = {d.key: d for d in unscoped_field_definitions().order_by("category", "key")}
    held = profile_fields_held(subject_id=subject_id, keys=list(definitions))
    if not held:
        return []
    keys = [key for key in definitions if key in held]
    values = profile_read(subject_id=subject_id, fields=keys, purpose=RIGHTS_PURPOSE, actor=actor)
    rows = []
    for key in keys:
        if key not in values:  # removed between the two reads
            continue
        definition, value = definitions[key], values[key]
        rows.append(
            {
                "key": key,
                "label": definition.label,
                "type": definition.field_type,
                "category": definition.category,
                "value": value.value,
                "source": value.source,
                "source_name": value.source_name,
                "legal_basis": value.legal_basis,
                "collected_at": value.collected_at,
                "expires_at": value.expires_at,
                "purposes": [{"slug": p.slug, "name": p.name} for p in definition.purposes.all()],
            }
        )
    return rows


def history_rows(subject_id: uuid.UUID, actor: Actor, labels: dict[str, str]) -> list[Row]:
    return [
        {
            "key": earlier.key,
            "label": labels.get(earlier.key, earlier.key),
            "value": earlier.value,
            "source": earlier.source,
            "source_name": earlier.source_name,
            "collected_at": earlier.collected_at,
            "replaced_at": earlier.replaced_at,
        }
        for earlier in profile_history_read(subject_id=subject_id, actor=actor)
    ]


def record_rows(subject_id: uuid.UUID, actor: Actor, shape: str) -> Iterator[tuple[list[Row], int]]:
    """The person's documents or events, newest first, a page at a time: yields (page, total)."""
    total = profile_records_count(subject_id=subject_id, purpose=RIGHTS_PURPOSE, shape=shape)
    for offset in range(0, total, RECORDS_PAGE):
        page = profile_records_read(
            subject_id=subject_id, purpose=RIGHTS_PURPOSE, actor=actor, shape=shape, offset=offset, limit=RECORDS_PAGE
        )
        time_name = "occurred_at" if shape == RecordKind.Shape.EVENT else "collected_at"
        yield (
            [
                {
                    "id": str(record.id),
                    "kind": record.kind,
                    time_name: record.occurred_at,
                    "source": record.source,
                    "source_name": record.source_name,
                    "expires_at": record.expires_at,
                    "body": record.body,
                }
                for record in page
            ],
            total,
        )


def consent_rows(subject_id: uuid.UUID) -> list[Row]:
    """The ledger, oldest first, each choice with its receipt (Kantara v1.1) as readable JSON and
    as the signed JWS that /.well-known/jwks.json verifies. Nothing here is encrypted: the IP
    address was only ever kept as a keyed hash."""
    rows = []
    for event in reversed(list(consent_history(subject_id=subject_id))):
        has_receipt = event.event_type in RECEIPT_EVENTS
        rows.append(
            {
                "id": str(event.id),
                "purpose": event.purpose.slug,
                "purpose_name": event.purpose.name,
                "legal_basis": event.purpose.legal_basis,
                "event": event.event_type,
                "seq": event.seq,
                "policy_version": event.policy_version.label,
                "policy_sha256": event.policy_version.sha256,
                "method": event.method,
                "by": event.actor_type,
                "occurred_at": event.occurred_at,
                "jurisdiction": event.jurisdiction,
                "ip_address_hash": event.ip_hash,
                "browser_family": event.ua_family,
                "receipt": consent_receipt(event) if has_receipt else None,
                "receipt_jws": consent_receipt_jws(event) if has_receipt else None,
            }
        )
    return rows


def connected_account_rows(subject_id: uuid.UUID, actor: Actor) -> list[Row]:
    """Each linked social account with what its provider sent. Tokens are never written out,
    nor even decrypted: the person learns that they are held, for which app and until when."""
    rows = []
    for linked in social_accounts_sealed(subject_id=subject_id):
        unsealed = social_account_unseal(
            subject_id=subject_id,
            provider=linked.provider,
            data=linked.data,
            tokens=[],
            purpose=RIGHTS_PURPOSE,
            actor=actor,
        )
        rows.append(
            {
                "provider": linked.provider,
                "provider_account_id": linked.uid,
                "connected_at": linked.connected_at,
                "last_login": linked.last_login,
                "provider_data": unsealed.extra_data,
                "tokens": [
                    {
                        "held": True,
                        "access_token_held": token.access_token is not None,
                        "refresh_token_held": token.refresh_token is not None,
                        "expires_at": token.token.expires_at,
                    }
                    for token in linked.tokens
                ],
            }
        )
    return rows


_ACTORS = {
    AuditActorType.PERSON: "another person",
    AuditActorType.STAFF: "staff member",
    AuditActorType.PARTNER: "partner",
    AuditActorType.SYSTEM: "automated process",
}


def access_log_rows(subject_id: uuid.UUID) -> list[Row]:
    """Every audit entry about the person, newest first: when, what, which fields, for which
    purpose, and what kind of actor (partners and jobs by name; staff and other people never)."""
    rows: list[Row] = []
    number, pages = 1, 1
    while number <= pages:
        page = audit_entries_about(subject_id=subject_id, page=number, per_page=AUDIT_PAGE)
        pages = page.paginator.num_pages
        rows += [
            {
                "when": entry.when,
                "action": entry.action,
                "purpose": entry.purpose,
                "fields": entry.fields,
                "actor": "you" if entry.by_self else _ACTORS.get(AuditActorType(entry.actor_type), "other"),
                "actor_name": entry.actor_name,
            }
            for entry in page.object_list
        ]
        number += 1
    return rows


def request_rows(subject_id: uuid.UUID) -> list[Row]:
    """The person's rights requests: what the person sees of them, never the sealed details or
    who among staff verified them."""
    return [
        {
            "id": str(request.id),
            "kind": request.kind,
            "status": request.status,
            "channel": request.channel,
            "received_at": request.received_at,
            "due_at": request.due_at,
            "extended_due_at": request.extended_due_at,
            "extension_reason": request.extension_reason,
            "rejection_reason": request.rejection_reason,
            "verification": request.verification,
            "verified_at": request.verified_at,
            "purposes": request.purposes,
            "legal_hold": request.legal_hold,
            "legal_hold_reason": request.legal_hold_reason,
            "grace_ends_at": request.grace_ends_at,
            "completed_at": request.completed_at,
        }
        for request in RightsRequest.objects.filter(subject_id=subject_id).order_by("received_at", "id")
    ]


def export_parts_collect(
    *, subject_id: uuid.UUID, actor: Actor, generated_at: datetime, on_progress: Callable[[int], None]
) -> ExportParts:
    """Everything about the person, reporting progress from 0 to 90 (writing the zip is the rest).
    The access log is read last, so it shows this export's own reads too."""
    parts = ExportParts(subject_id=subject_id, generated_at=generated_at)
    on_progress(0)
    parts.account = {"subject_id": str(subject_id), "login_email": account_email(subject_id=subject_id)}
    parts.profile = profile_rows(subject_id, actor)
    on_progress(10)
    labels = {d.key: d.label for d in unscoped_field_definitions()}
    parts.history = history_rows(subject_id, actor, labels)
    on_progress(15)
    for shape, rows, start, span in (
        (RecordKind.Shape.DOCUMENT, parts.documents, 15, 10),
        (RecordKind.Shape.EVENT, parts.events, 25, 40),
    ):
        for page, total in record_rows(subject_id, actor, shape):
            rows += page
            on_progress(start + span * len(rows) // total)
        on_progress(start + span)
    parts.consents = consent_rows(subject_id)
    on_progress(75)
    parts.connected_accounts = connected_account_rows(subject_id, actor)
    on_progress(80)
    parts.requests = request_rows(subject_id)
    parts.access_log = access_log_rows(subject_id)
    on_progress(90)
    return parts
