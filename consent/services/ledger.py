"""The consent ledger (DESIGN.md invariant 5): granting, withdrawing and refusing, and the
projection of the current state, rebuilt from the ledger when needed. Each choice (here, in the
links and for GPC) is written by `event_record`: one ledger event, its projection update and its
audit entry, committed together; a refused call raises a typed `ConsentError` before anything is
written. Only `bulk_import` writes events otherwise, in bulk, under the same rules."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from itertools import batched
from typing import NotRequired, TypedDict, Unpack

from django.db import connections, router, transaction
from django.utils import timezone

from consent.errors import DoubleOptInRequired, GlobalPrivacyControlOptOut, InvalidMethod, NotConsentBased
from consent.models import (
    NO_CHOICE_BASES,
    STATUS_AFTER,
    ConsentEvent,
    ConsentState,
    ConsentStatus,
    EventType,
    LegalBasis,
    Method,
    Purpose,
)
from consent.services.age_gate import age_check, birth_date_check
from consent.services.evidence import Evidence, evidence_columns, jurisdiction_clean
from consent.services.policies import purpose_named, version_chosen
from vault.audit import audit_record
from vault.models import AuditActorType
from vault.outbox import outbox_emit

# The outbox topic announcing a change of someone's consent state (ids only), for the partners app.
CONSENT_CHANGED_TOPIC = "consent.changed"

# Methods only following an e-mailed link records (consent/services/links.py).
LINK_METHODS = frozenset({Method.DOUBLE_OPT_IN, Method.PARENTAL_CONSENT})


@dataclass(frozen=True)
class RebuildReport:
    events: int
    created: int
    updated: int
    deleted: int
    unchanged: int

    @property
    def in_step(self) -> bool:
        """Whether the projection already matched the ledger."""
        return not (self.created or self.updated or self.deleted)


class NothingToRecord(Exception):
    """Raised by a guard when, under the lock, the event turns out to be unneeded."""


def method_check(purpose: Purpose, action: EventType, method: str) -> None:
    """Whether `method` may record `action` for `purpose`; raises `InvalidMethod` or
    `DoubleOptInRequired`."""
    if method not in Method.values:
        raise InvalidMethod("Not a known collection method.")
    if method == Method.GPC:
        # A GPC signal is an opt-out of selling or sharing, and nothing else.
        if action == EventType.GRANT:
            raise InvalidMethod("Global Privacy Control only opts out; it never grants.")
        if not purpose.is_sale_or_sharing:
            raise InvalidMethod("Global Privacy Control applies only to purposes that sell or share data.")
    if action == EventType.GRANT and purpose.requires_double_opt_in and method != Method.DOUBLE_OPT_IN:
        raise DoubleOptInRequired()
    if action == EventType.REQUEST and purpose.requires_double_opt_in and method != Method.DOUBLE_OPT_IN:
        # A parent's link does not prove the account's address: such purposes stay out of reach.
        raise DoubleOptInRequired()


def event_record(
    action: EventType,
    *,
    subject_id: uuid.UUID,
    purpose: str,
    policy_version: str | None,
    method: str,
    evidence: Evidence | None,
    jurisdiction: str,
    actor_type: str,
    actor_id: str,
    age: int | None = None,
    birth_date: date | None = None,
    guard: Callable[[ConsentState, bool], None] | None = None,
) -> ConsentEvent:
    """Validate everything first, then write the event, the projection and the audit entry in one
    transaction, holding the projection row's lock so one person's choices for one purpose are
    applied one at a time, in `seq` order. `guard(state, created)` runs under that lock, for
    conditions on the current state that must not change between checking and writing.
    `age` and `birth_date` are for the age gate (`age_gate.age_known` says which decides)."""
    now = timezone.now()
    if birth_date is not None:
        birth_date_check(birth_date)  # refused even where the age gate does not apply
    target = purpose_named(purpose)
    if target.legal_basis in NO_CHOICE_BASES:
        raise NotConsentBased()
    method_check(target, action, method)
    alone = action in (EventType.GRANT, EventType.REQUEST) and method != Method.PARENTAL_CONSENT
    if alone and target.legal_basis == LegalBasis.CONSENT:
        jurisdiction = age_check(subject_id, target, age, jurisdiction, birth_date)
    version = version_chosen(target, policy_version, now=now, current_only=action == EventType.GRANT)
    region = jurisdiction_clean(jurisdiction)
    ip_hash, ua_family = evidence_columns(evidence)

    with transaction.atomic():
        state, created = ConsentState.objects.select_for_update().get_or_create(
            subject_id=subject_id,
            purpose=target,
            defaults={"status": STATUS_AFTER[action], "policy_version": version, "changed_at": now},
        )
        if guard is not None:
            guard(state, created)
        event_type = action
        if action == EventType.GRANT and not created and state.status == ConsentStatus.GRANTED:
            event_type = EventType.RENEW
        occurred_at = timezone.now()  # taken under the lock: a pair's events are in time order
        event = ConsentEvent.objects.create(
            subject_id=subject_id,
            purpose=target,
            seq=state.last_seq + 1,
            event_type=event_type,
            policy_version=version,
            method=method,
            actor_type=actor_type,
            occurred_at=occurred_at,
            jurisdiction=region,
            ip_hash=ip_hash,
            ua_family=ua_family,
        )
        changed = created or state.status != STATUS_AFTER[event_type]
        state.status = STATUS_AFTER[event_type]
        state.policy_version = version
        state.last_seq = event.seq
        state.changed_at = occurred_at
        state.save(update_fields=["status", "policy_version", "last_seq", "changed_at"])
        person = actor_type == AuditActorType.PERSON
        audit_record(
            actor_type=actor_type,
            actor_id=actor_id,
            actor_subject_id=subject_id if person else None,
            action=f"consent.{event_type}",
            purpose=target.slug,
            subject_id=subject_id,
        )
        if changed:  # a renewal changes no state: partners hear of changes only
            payload = {"subject_id": subject_id, "purpose": target.slug, "status": state.status}
            outbox_emit(topic=CONSENT_CHANGED_TOPIC, payload=payload)
    return event


def consent_grant(
    *,
    subject_id: uuid.UUID,
    purpose: str,
    policy_version: str | None = None,
    method: str,
    evidence: Evidence | None = None,
    jurisdiction: str = "",
    actor_type: str = AuditActorType.PERSON,
    actor_id: str = "",
    gpc: bool = False,
    gpc_override: bool = False,
    age: int | None = None,
    birth_date: date | None = None,
) -> ConsentEvent:
    """Record that the subject consents to `purpose` under the policy version in force (naming
    another raises `PolicyNotCurrent`). Granting again while granted is recorded as a renewal.
    `actor_type`/`actor_id` name a staff member or system acting for the person.

    `gpc`: the request carries Global Privacy Control, which refuses a sale/sharing purpose
    unless `gpc_override`, the explicit choice the person makes in the portal.
    `birth_date`: the one the person declares with this choice (the API's): checked, compared
    with the one in the profile (a different one is refused) and not stored.
    `age`: an age the caller knows, for a person whose profile holds no birth date.
    A person below the age of digital consent cannot grant alone."""
    if method in LINK_METHODS:
        raise InvalidMethod("Only following the e-mailed link records this kind of confirmation.")
    if gpc and not gpc_override and purpose_named(purpose).is_sale_or_sharing:
        raise GlobalPrivacyControlOptOut()
    return event_record(
        EventType.GRANT,
        subject_id=subject_id,
        purpose=purpose,
        policy_version=policy_version,
        method=method,
        evidence=evidence,
        jurisdiction=jurisdiction,
        actor_type=actor_type,
        actor_id=actor_id,
        age=age,
        birth_date=birth_date,
    )


class Refusal(TypedDict):
    """The arguments of `consent_withdraw` and `consent_refuse`: who says no to which purpose,
    how, and (optionally) to which published version of its policy."""

    subject_id: uuid.UUID
    purpose: str
    method: str
    policy_version: NotRequired[str | None]
    evidence: NotRequired[Evidence | None]
    jurisdiction: NotRequired[str]
    actor_type: NotRequired[str]
    actor_id: NotRequired[str]


def consent_withdraw(**refusal: Unpack[Refusal]) -> ConsentEvent:
    """Record that the subject withdraws consent (or objects, for a legitimate-interest purpose).
    As easy as granting: no condition a grant does not have, and any published version may be named."""
    return _say_no(EventType.WITHDRAW, **refusal)


def consent_refuse(**refusal: Unpack[Refusal]) -> ConsentEvent:
    """Record that the subject said no when asked, so they are not asked again as if undecided."""
    return _say_no(EventType.REFUSE, **refusal)


def _say_no(
    action: EventType,
    *,
    subject_id: uuid.UUID,
    purpose: str,
    method: str,
    policy_version: str | None = None,
    evidence: Evidence | None = None,
    jurisdiction: str = "",
    actor_type: str = AuditActorType.PERSON,
    actor_id: str = "",
) -> ConsentEvent:
    return event_record(
        action,
        subject_id=subject_id,
        purpose=purpose,
        policy_version=policy_version,
        method=method,
        evidence=evidence,
        jurisdiction=jurisdiction,
        actor_type=actor_type,
        actor_id=actor_id,
    )


def _lock_projection() -> None:
    """Keep choices from being recorded while the projection is rebuilt (reads go on). The
    services lock a projection row before writing an event, which this table lock waits for and
    then holds off. SQLite serializes writers by itself."""
    connection = connections[router.db_for_write(ConsentState)]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            table = connection.ops.quote_name(ConsentState._meta.db_table)
            cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")


def consent_projection_rebuild(*, dry_run: bool = False, batch_size: int = 5000) -> RebuildReport:
    """Replay the ledger into the projection and fix every row that differs, creating missing
    ones and deleting those with no events. `dry_run` only reports. The projection is then what
    the services would have left, which is how a damaged or migrated projection is repaired."""
    with transaction.atomic():
        _lock_projection()
        wanted: dict[tuple[uuid.UUID, int], tuple[str, int, int, datetime]] = {}
        events = 0
        replay = ConsentEvent.objects.order_by("subject_id", "purpose_id", "seq").values_list(
            "subject_id", "purpose_id", "event_type", "policy_version_id", "seq", "occurred_at"
        )
        for subject_id, purpose_id, event_type, version_id, seq, occurred_at in replay.iterator(chunk_size=batch_size):
            wanted[(subject_id, purpose_id)] = (STATUS_AFTER[event_type], version_id, seq, occurred_at)
            events += 1

        updated: list[ConsentState] = []
        stale: list[uuid.UUID] = []
        unchanged = 0
        for state in ConsentState.objects.order_by().iterator(chunk_size=batch_size):
            target = wanted.pop((state.subject_id, state.purpose_id), None)
            if target is None:
                stale.append(state.pk)
            elif (state.status, state.policy_version_id, state.last_seq, state.changed_at) == target:
                unchanged += 1
            else:
                state.status, state.policy_version_id, state.last_seq, state.changed_at = target
                updated.append(state)
        created = [
            ConsentState(
                subject_id=subject_id,
                purpose_id=purpose_id,
                status=status,
                policy_version_id=version_id,
                last_seq=seq,
                changed_at=changed_at,
            )
            for (subject_id, purpose_id), (status, version_id, seq, changed_at) in wanted.items()
        ]
        if not dry_run:
            ConsentState.objects.bulk_create(created, batch_size=batch_size)
            ConsentState.objects.bulk_update(
                updated, ["status", "policy_version", "last_seq", "changed_at"], batch_size=batch_size
            )
            for chunk in batched(stale, batch_size):
                ConsentState.objects.filter(pk__in=chunk).delete()
    return RebuildReport(
        events=events, created=len(created), updated=len(updated), deleted=len(stale), unchanged=unchanged
    )
