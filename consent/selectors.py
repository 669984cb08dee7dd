"""Reads of consent: the hot-path checks that the access gate and segment jobs call on every use
of data, and the per-purpose list the portal and API show.

Whether a purpose's processing may go on for a person depends on its legal basis: always for a
contract or legal obligation, unless they objected for a legitimate interest, and for consent
only after a grant that still stands: a grant named a policy version older than the latest
material version in force no longer counts (the person must renew it).
"""

import json
import operator
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connections, router
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncWeek
from django.utils import timezone

from consent.errors import UnknownPurpose
from consent.models import (
    NO_CHOICE_BASES,
    ConsentEvent,
    ConsentState,
    ConsentStatus,
    LegalBasis,
    Method,
    PolicyVersion,
    Purpose,
)
from consent.receipts import RECEIPT_EVENTS

_OBJECTIONS = frozenset({ConsentStatus.WITHDRAWN, ConsentStatus.REFUSED})


@dataclass(frozen=True)
class PolicyInfo:
    label: str
    sha256: str
    effective_from: datetime
    is_material: bool


@dataclass(frozen=True)
class PurposeConsent:
    """Where one person stands for one purpose, with what the portal needs to show it."""

    purpose: str  # the slug
    name: str
    description: str
    legal_basis: str
    is_sale_or_sharing: bool
    requires_double_opt_in: bool
    min_age: int | None
    state: ConsentStatus
    is_granted: bool  # what consent_is_granted answers
    current_policy: PolicyInfo | None  # the version in force: what a grant would be given to
    decided_policy: str | None  # the label of the version their latest choice named
    changed_at: datetime | None  # when they made it


def _counts(basis: str, status: str | None, needs_renewal: bool) -> bool:
    """The rule of the module docstring, for one person (status None: they never chose)."""
    if basis in NO_CHOICE_BASES:
        return True
    if basis == LegalBasis.LEGITIMATE_INTEREST:
        return status not in _OBJECTIONS
    return status == ConsentStatus.GRANTED and not needs_renewal


# Raw SQL because this runs before every use of data, and the ORM spent three times longer
# building the query than the database took to answer it (bench/bench_consent.py). One
# statement: the purpose by its slug (unique index), when its latest material version in force
# took effect (aggregated once, not per subject), and the subjects' projection rows by the
# (subject, purpose) unique index. No row at all: unknown purpose; one row of NULLs: none of the
# subjects ever chose.
_CHECK_SQL = """
SELECT p.legal_basis, {subject}, s.status, v.effective_from < r.since
FROM {purpose} p
LEFT JOIN (
    SELECT purpose_id, MAX(effective_from) AS since FROM {version}
    WHERE is_material AND effective_from <= %s GROUP BY purpose_id
) r ON r.purpose_id = p.id
LEFT JOIN {state} s ON s.purpose_id = p.id AND s.subject_id {subjects}
LEFT JOIN {version} v ON v.id = s.policy_version_id
WHERE p.slug = %s
"""


def _check(purpose: str, subjects: list[uuid.UUID]) -> tuple[str, dict[bytes | str, tuple[str, bool]]]:
    """The purpose's legal basis and, for each of `subjects` that has a projection row, its
    (status, needs renewal), keyed by `_answer_key(subject)`. Raises `UnknownPurpose`.

    Rows name their subject as 16 bytes on PostgreSQL (`uuid_send`) and as the stored hex on
    SQLite: a bulk check of 10,000 subjects spent more time making UUID objects of the answer
    than the database took to find it."""
    connection = connections[router.db_for_read(ConsentState)]
    postgresql = connection.vendor == "postgresql"
    subject = "uuid_send(s.subject_id)" if postgresql else "s.subject_id"
    if len(subjects) == 1:
        match, param = "= %s", ConsentState._meta.get_field("subject_id").get_db_prep_value(subjects[0], connection)
    elif postgresql:
        # One array literal: adapting 10,000 UUIDs one by one cost more than the query.
        match, param = "= ANY(%s::uuid[])", "{" + ",".join(s.hex for s in subjects) + "}"
    else:
        match, param = "IN (SELECT value FROM json_each(%s))", json.dumps([s.hex for s in subjects])
    sql = _CHECK_SQL.format(
        purpose=Purpose._meta.db_table,
        version=PolicyVersion._meta.db_table,
        state=ConsentState._meta.db_table,
        subject=subject,
        subjects=match,
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, param, purpose])
        rows = cursor.fetchall()
    if not rows:
        raise UnknownPurpose()
    decided = {
        bytes(key) if postgresql else key: (status, bool(needs_renewal))
        for _, key, status, needs_renewal in rows
        if key is not None
    }
    return rows[0][0], decided


def _answer_key() -> Callable[[uuid.UUID], bytes | str]:
    """How `_check`'s answer names a subject on the database it asked (see there)."""
    postgresql = connections[router.db_for_read(ConsentState)].vendor == "postgresql"
    return operator.attrgetter("bytes" if postgresql else "hex")


def consent_is_granted(*, subject_id: uuid.UUID, purpose: str) -> bool:
    """Whether `purpose`'s processing may go on for the subject now. One indexed query."""
    basis, decided = _check(purpose, [subject_id])
    return _counts(basis, *next(iter(decided.values()), (None, False)))


def consent_granted_subjects(*, subject_ids: Iterable[uuid.UUID], purpose: str) -> set[uuid.UUID]:
    """The subjects among `subject_ids` for whom `purpose`'s processing may go on now: the bulk
    form of `consent_is_granted`, in one indexed query (pass batches of some thousands)."""
    wanted = list(dict.fromkeys(s if type(s) is uuid.UUID else uuid.UUID(str(s)) for s in subject_ids))
    basis, decided = _check(purpose, wanted)
    if basis in NO_CHOICE_BASES:
        return set(wanted)
    undecided = _counts(basis, None, False)
    key = _answer_key()
    granted = set()
    for subject_id in wanted:
        found = decided.get(key(subject_id))
        if _counts(basis, *found) if found else undecided:
            granted.add(subject_id)
    return granted


def _state(basis: str, status: str | None, needs_renewal: bool) -> ConsentStatus:
    if basis in NO_CHOICE_BASES or (basis == LegalBasis.LEGITIMATE_INTEREST and status is None):
        return ConsentStatus.NOT_APPLICABLE
    if status is None:
        return ConsentStatus.NOT_GIVEN  # consent is never presumed
    if status == ConsentStatus.GRANTED and basis == LegalBasis.CONSENT and needs_renewal:
        return ConsentStatus.NEEDS_RENEWAL
    return ConsentStatus(status)


def consent_states(*, subject_id: uuid.UUID) -> list[PurposeConsent]:
    """Every purpose, in the register's order, with the subject's standing and the policy in
    force. Three queries whatever the number of purposes."""
    now = timezone.now()
    in_force: dict[int, PolicyVersion] = {}
    renewal_since: dict[int, datetime] = {}
    for version in PolicyVersion.objects.filter(effective_from__lte=now).defer("text").order_by("effective_from"):
        in_force[version.purpose_id] = version
        if version.is_material:
            renewal_since[version.purpose_id] = version.effective_from
    decisions = {
        purpose_id: (status, label, decided_from, changed_at)
        for purpose_id, status, label, decided_from, changed_at in ConsentState.objects.filter(
            subject_id=subject_id
        ).values_list("purpose_id", "status", "policy_version__label", "policy_version__effective_from", "changed_at")
    }
    listing = []
    for purpose in Purpose.objects.all():
        status, label, decided_from, changed_at = decisions.get(purpose.pk, (None, None, None, None))
        since = renewal_since.get(purpose.pk)
        needs_renewal = decided_from is not None and since is not None and decided_from < since
        current = in_force.get(purpose.pk)
        listing.append(
            PurposeConsent(
                purpose=purpose.slug,
                name=purpose.name,
                description=purpose.description,
                legal_basis=purpose.legal_basis,
                is_sale_or_sharing=purpose.is_sale_or_sharing,
                requires_double_opt_in=purpose.requires_double_opt_in,
                min_age=purpose.min_age,
                state=_state(purpose.legal_basis, status, needs_renewal),
                is_granted=_counts(purpose.legal_basis, status, needs_renewal),
                current_policy=None
                if current is None
                else PolicyInfo(current.label, current.sha256, current.effective_from, current.is_material),
                decided_policy=label,
                changed_at=changed_at,
            )
        )
    return listing


def consent_history(*, subject_id: uuid.UUID) -> QuerySet[ConsentEvent]:
    """The person's ledger, newest first, as the API and the portal list it."""
    return (
        ConsentEvent.objects.filter(subject_id=subject_id)
        .select_related("purpose", "policy_version")
        .order_by("-occurred_at", "-seq")
    )


def consent_receipt_event(*, subject_id: uuid.UUID, event_id: uuid.UUID) -> ConsentEvent | None:
    """One of the person's own choices that has a receipt; None for anyone else's."""
    return consent_history(subject_id=subject_id).filter(id=event_id, event_type__in=RECEIPT_EVENTS).first()


def consent_receipt_events(*, subject_id: uuid.UUID, limit: int = 50) -> list[ConsentEvent]:
    """The person's latest choices that have receipts (grants, withdrawals, refusals)."""
    return list(consent_history(subject_id=subject_id).filter(event_type__in=RECEIPT_EVENTS)[:limit])


@dataclass(frozen=True)
class ConsentChange:
    """One act of the ledger for a purpose, as a changes feed sees it: who and when, not how."""

    subject_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    id: uuid.UUID


def consent_changes_since(
    *, purpose: str, since: tuple[datetime, uuid.UUID] | None, limit: int, until: datetime | None = None
) -> list[ConsentChange]:
    """The ledger's acts for `purpose` after position `since` ((occurred_at, event id), None: from
    the start) and up to `until`, oldest first, at most `limit`: a keyset page on the ledger's
    time index. Ids and times only (what the person chose is in `consent_granted_subjects`)."""
    events = ConsentEvent.objects.filter(purpose__slug=purpose)
    if since is not None:
        at, after = since
        events = events.filter(Q(occurred_at__gt=at) | Q(occurred_at=at, id__gt=after))
    if until is not None:
        events = events.filter(occurred_at__lte=until)
    rows = events.order_by("occurred_at", "id").values_list("subject_id", "event_type", "occurred_at", "id")[:limit]
    return [ConsentChange(*row) for row in rows]


def consent_grant_holders(*, purpose: str) -> QuerySet[ConsentState, uuid.UUID]:
    """The ids of the subjects whose latest choice for `purpose` is a grant, in id order: the
    candidates of a bulk job, who `consent_granted_subjects` then confirms (a grant that needs
    renewal no longer counts). Page through with `.filter(subject_id__gt=last)[:n]`."""
    return (
        ConsentState.objects.filter(purpose__slug=purpose, status=ConsentStatus.GRANTED)
        .order_by("subject_id")
        .values_list("subject_id", flat=True)
    )


# --- Aggregates for the staff's consent analytics (counts only, never a person) ---------------


@dataclass(frozen=True)
class LedgerWeek:
    """How many acts of one kind the ledger holds for a purpose in a week, with the act each one
    followed (None: the person's first for the purpose): enough to replay, week by week, how many
    people stood where, without reading anyone's rows."""

    purpose_id: int
    week: datetime  # the Monday 00:00 (current time zone) the week starts at
    event_type: str
    policy_version_id: int
    previous_type: str | None
    previous_version_id: int | None
    events: int


def consent_ledger_weekly() -> list[LedgerWeek]:
    """The whole ledger summed by purpose, week, act and previous act (with the versions they
    named), in one GROUP BY query: the previous act is the same person's event of `seq - 1`,
    found through the (subject, purpose, seq) unique index."""
    previous = ConsentEvent.objects.filter(
        subject_id=OuterRef("subject_id"), purpose_id=OuterRef("purpose_id"), seq=OuterRef("seq") - 1
    )
    rows = (
        ConsentEvent.objects.annotate(
            week=TruncWeek("occurred_at"),
            previous_type=Subquery(previous.values("event_type")[:1]),
            previous_version_id=Subquery(previous.values("policy_version_id")[:1]),
        )
        .values("purpose_id", "week", "event_type", "policy_version_id", "previous_type", "previous_version_id")
        .annotate(events=Count("id"))
        .order_by("week")
    )
    return [LedgerWeek(**row) for row in rows]


@dataclass(frozen=True)
class GpcWeek:
    week: datetime
    people: int  # distinct people whose signal the ledger recorded that week
    events: int  # one per sale/sharing purpose it opted them out of


def consent_gpc_weekly(*, since: datetime | None = None) -> list[GpcWeek]:
    """The Global Privacy Control opt-outs the ledger recorded (method "gpc"), per week."""
    events = ConsentEvent.objects.filter(method=Method.GPC)
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    rows = (
        events.annotate(week=TruncWeek("occurred_at"))
        .values("week")
        .annotate(people=Count("subject_id", distinct=True), events=Count("id"))
        .order_by("week")
    )
    return [GpcWeek(**row) for row in rows]


def consent_policy_versions() -> QuerySet[PolicyVersion]:
    """Every purpose's versions (without their texts), in the order they take effect."""
    return PolicyVersion.objects.defer("text").order_by("purpose_id", "effective_from")


def consent_renewals_if_material(*, purpose: str, effective_from: datetime | None = None) -> int:
    """How many people's grant for `purpose` that counts now would need renewing if a material
    version took effect at `effective_from` (default: now): grants given against a version older
    than it, not already waiting for renewal. Staff see it before they publish a material change.
    Only consent-based purposes have grants to renew. One aggregate query on the projection."""
    target = Purpose.objects.filter(slug=purpose).first()
    if target is None:
        raise UnknownPurpose()
    if target.legal_basis != LegalBasis.CONSENT:
        return 0
    now = timezone.now()
    when = effective_from or now
    grants = ConsentState.objects.filter(
        purpose=target, status=ConsentStatus.GRANTED, policy_version__effective_from__lt=when
    )
    since = (
        target.versions.filter(is_material=True, effective_from__lte=now)
        .order_by("-effective_from")
        .values_list("effective_from", flat=True)
        .first()
    )
    if since is not None:
        grants = grants.filter(policy_version__effective_from__gte=since)
    return grants.count()
