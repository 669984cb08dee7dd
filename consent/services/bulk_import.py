"""Many choices collected elsewhere, written at once (an import from another system, the demo
seed): the ledger's rules for one choice, checked for every pair before anything is written, then
applied in bulk writes, a batch of pairs per transaction, instead of one transaction per event."""

import uuid
from collections.abc import Iterable, Mapping
from itertools import batched

from django.db import transaction
from django.utils import timezone

from consent.errors import NotConsentBased, UnknownPurpose
from consent.models import (
    NO_CHOICE_BASES,
    STATUS_AFTER,
    ConsentEvent,
    ConsentState,
    ConsentStatus,
    EventType,
    LegalBasis,
    Method,
    PolicyVersion,
    Purpose,
)
from consent.services.age_gate import ages_check
from consent.services.evidence import jurisdiction_clean
from consent.services.ledger import method_check
from consent.services.policies import version_chosen
from vault.audit import audit_record_many
from vault.crypto import as_subject_id
from vault.models import AuditActorType


def consent_import_many(
    *,
    grants: Iterable[tuple[uuid.UUID, str]],
    withdrawals: Iterable[tuple[uuid.UUID, str]] = (),
    ages: Mapping[uuid.UUID, int] | None = None,
    jurisdictions: Mapping[uuid.UUID, str] | None = None,
    actor_id: str = "consent.import",
    batch_size: int = 5000,
) -> int:
    """Record many choices collected elsewhere (an import from another system, the demo seed):
    grants of (subject, purpose) pairs, then withdrawals, with method "import" by the system
    `actor_id`, each naming the policy version in force. Returns how many events were written.

    The rules are `consent_grant`'s and `consent_withdraw`'s, checked for every pair before
    anything is written: a purpose without a choice (contract, legal obligation) or needing a
    double opt-in (which an import cannot prove) is refused, and so is a grant by someone whose
    age is unknown or below the age of digital consent. `ages` and `jurisdictions` are what the
    source knew; for the others the age source is asked, as the age gate does. A pair given
    twice is recorded once.

    Each batch of pairs is one transaction: its events (`seq` following the pair's latest), the
    projection rows they leave, and one audit entry per event (written in a few bulk appends).
    A choice recorded meanwhile for a pair that had none fails the batch on the projection's
    unique constraint rather than numbering two events alike."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    granted = list(dict.fromkeys((as_subject_id(s), p) for s, p in grants))
    withdrawn = list(dict.fromkeys((as_subject_id(s), p) for s, p in withdrawals))
    now = timezone.now()
    slugs = {p for _, p in granted} | {p for _, p in withdrawn}
    purposes = {purpose.slug: purpose for purpose in Purpose.objects.filter(slug__in=slugs)}
    if slugs - set(purposes):
        raise UnknownPurpose()
    for action, pairs in ((EventType.GRANT, granted), (EventType.WITHDRAW, withdrawn)):
        for slug in dict.fromkeys(p for _, p in pairs):
            if purposes[slug].legal_basis in NO_CHOICE_BASES:
                raise NotConsentBased()
            method_check(purposes[slug], action, Method.IMPORT)
    versions = {slug: version_chosen(purpose, None, now=now, current_only=True) for slug, purpose in purposes.items()}
    regions = {as_subject_id(s): jurisdiction_clean(code) for s, code in (jurisdictions or {}).items()}
    # Grants record the jurisdiction the age gate used (the person's country when the source
    # gave none); withdrawals only the source's, as `event_record` does.
    gated = ages_check(
        [(s, purposes[p]) for s, p in granted if purposes[p].legal_basis == LegalBasis.CONSENT],
        {as_subject_id(s): age for s, age in (ages or {}).items()},
        dict(regions),
    )
    steps: dict[tuple[uuid.UUID, str], list[tuple[EventType, str]]] = {}
    for subject_id, slug in granted:
        region = gated.get(subject_id, regions.get(subject_id, ""))
        steps.setdefault((subject_id, slug), []).append((EventType.GRANT, region))
    for subject_id, slug in withdrawn:
        steps.setdefault((subject_id, slug), []).append((EventType.WITHDRAW, regions.get(subject_id, "")))
    written = 0
    for batch in batched(steps.items(), batch_size):
        written += _import_batch(dict(batch), purposes, versions, actor_id)
    return written


def _import_batch(
    steps: dict[tuple[uuid.UUID, str], list[tuple[EventType, str]]],
    purposes: dict[str, Purpose],
    versions: dict[str, PolicyVersion],
    actor_id: str,
) -> int:
    """One transaction: lock the pairs' projection rows, append their events, update the rows."""
    subjects = list(dict.fromkeys(s for s, _ in steps))
    by_id = {purpose.pk: slug for slug, purpose in purposes.items()}
    events: list[ConsentEvent] = []
    audited: dict[tuple[str, str], list[uuid.UUID]] = {}
    with transaction.atomic():
        locked = ConsentState.objects.select_for_update().filter(subject_id__in=subjects, purpose_id__in=list(by_id))
        existing = {(state.subject_id, by_id[state.purpose_id]): state for state in locked}
        occurred_at = timezone.now()  # taken under the locks, as `event_record` does
        created: list[ConsentState] = []
        changed: list[ConsentState] = []
        for (subject_id, slug), actions in steps.items():
            state = existing.get((subject_id, slug))
            seq, status = (state.last_seq, state.status) if state is not None else (0, "")
            for action, region in actions:
                event_type = (
                    EventType.RENEW if action == EventType.GRANT and status == ConsentStatus.GRANTED else action
                )
                seq += 1
                events.append(
                    ConsentEvent(
                        subject_id=subject_id,
                        purpose_id=purposes[slug].pk,
                        seq=seq,
                        event_type=event_type,
                        policy_version_id=versions[slug].pk,
                        method=Method.IMPORT,
                        actor_type=AuditActorType.SYSTEM,
                        occurred_at=occurred_at,
                        jurisdiction=region,
                    )
                )
                status = STATUS_AFTER[event_type]
                audited.setdefault((event_type, slug), []).append(subject_id)
            if state is None:
                state = ConsentState(subject_id=subject_id, purpose_id=purposes[slug].pk)
                created.append(state)
            else:
                changed.append(state)
            state.status, state.policy_version_id, state.last_seq, state.changed_at = (
                status,
                versions[slug].pk,
                seq,
                occurred_at,
            )
        ConsentEvent.objects.bulk_create(events)
        ConsentState.objects.bulk_create(created)
        ConsentState.objects.bulk_update(changed, ["status", "policy_version", "last_seq", "changed_at"])
        for (recorded, slug), audited_subjects in audited.items():
            audit_record_many(
                actor_type=AuditActorType.SYSTEM,
                actor_id=actor_id,
                action=f"consent.{recorded}",
                purpose=slug,
                subject_ids=audited_subjects,
            )
    return len(events)
