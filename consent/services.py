"""Writes of consent: publishing policy texts, recording choices in the ledger, rebuilding the
projection. Every surface (portal, API, admin, tasks, commands) calls these, so the rules live here
once. Each choice is one ledger event, its projection update and its audit entry, committed
together; a refused call raises a typed `ConsentError` before anything is written."""

import ipaddress
import re
import smtplib
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import batched

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import connections, router, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.selectors import account_email
from consent.errors import (
    AgeUnknown,
    AlreadyGranted,
    ConsentError,
    DoubleOptInRequired,
    GlobalPrivacyControlOptOut,
    InvalidEvidence,
    InvalidJurisdiction,
    InvalidLink,
    InvalidMethod,
    InvalidParentEmail,
    InvalidPolicyVersion,
    LinkExpired,
    MailNotSent,
    NoAccount,
    NoCurrentPolicy,
    NotConsentBased,
    ParentalConsentNotNeeded,
    ParentalConsentRequired,
    PolicyNotCurrent,
    UnknownPolicyVersion,
    UnknownPurpose,
)
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
from vault.audit import audit_record, audit_record_many
from vault.blind_index import BlindIndex
from vault.crypto import as_subject_id
from vault.models import AuditActorType

# 128 bits: distinct addresses never collide, so the hash can confirm "this address" to someone
# holding the index key. It cannot hide an IPv4 address from that key holder (2^32 guesses);
# it keeps the address out of the database, dumps and backups.
EVIDENCE_IP_INDEX = BlindIndex("consent.evidence.ip", kind="text", bits=128)

# First match wins: Edge and Opera also say "Chrome", Chrome also says "Safari".
_UA_FAMILIES = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)\b")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/")),
    ("Chrome", re.compile(r"\b(?:Chrome|CriOS|Chromium)/")),
    ("Safari", re.compile(r"\bSafari/")),
)
_JURISDICTION = re.compile(r"^[A-Z]{2}(?:-[A-Z0-9]{1,3})?$")
# A version may be dated a little before the call (a form filled in a minute ago), never more:
# backdating would make grants given meanwhile look given against a superseded text.
PUBLISH_GRACE = timedelta(minutes=5)


@dataclass(frozen=True)
class Evidence:
    """How the request carrying a choice looked. Only a keyed hash of the address and the
    browser's family are stored, never the values themselves."""

    ip_address: str = ""
    user_agent: str = ""


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


def user_agent_family(user_agent: str) -> str:
    """ "Chrome", "Firefox", "Safari", "Edge", "Opera" or "other": enough to describe how consent
    was collected, too coarse to fingerprint anyone."""
    head = user_agent[:512]
    return next((family for family, pattern in _UA_FAMILIES if pattern.search(head)), "other")


def _evidence_columns(evidence: Evidence | None) -> tuple[str, str]:
    if evidence is None:
        return "", ""
    ip_hash = ""
    if evidence.ip_address:
        try:
            address = ipaddress.ip_address(evidence.ip_address.strip())
        except ValueError:
            raise InvalidEvidence("The IP address is not well-formed.") from None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # one address, one hash, however the proxy wrote it
        ip_hash = EVIDENCE_IP_INDEX.compute(address.compressed)
    return ip_hash, user_agent_family(evidence.user_agent) if evidence.user_agent else ""


def _jurisdiction(code: str) -> str:
    code = code.strip().upper()
    if code and not _JURISDICTION.match(code):
        raise InvalidJurisdiction()
    return code


def _purpose(slug: str) -> Purpose:
    purpose = Purpose.objects.filter(slug=slug).first() if isinstance(slug, str) else None
    if purpose is None:
        raise UnknownPurpose()
    return purpose


def _version(purpose: Purpose, label: str | None, *, now: datetime, current_only: bool) -> PolicyVersion:
    """The version a choice names: the one in force unless `label` says otherwise. A grant must
    name the version in force; a withdrawal or refusal may name any published one, so a person
    looking at a stale page can still say no."""
    in_force = purpose.versions.filter(effective_from__lte=now).order_by("-effective_from").first()
    if in_force is None:
        raise NoCurrentPolicy()
    if label is None or label == in_force.label:
        return in_force
    version = purpose.versions.filter(label=label).first()
    if version is None:
        raise UnknownPolicyVersion()
    if version.effective_from > now:
        raise PolicyNotCurrent("This policy version is not published yet.")
    if current_only:
        raise PolicyNotCurrent("This policy version was superseded; consent is given to the one in force.")
    return version


def _check_method(purpose: Purpose, action: EventType, method: str) -> None:
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


def _record(
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
    guard: Callable[[ConsentState, bool], None] | None = None,
) -> ConsentEvent:
    """Validate everything first, then write the event, the projection and the audit entry in one
    transaction, holding the projection row's lock so one person's choices for one purpose are
    applied one at a time, in `seq` order. `guard(state, created)` runs under that lock, for
    conditions on the current state that must not change between checking and writing."""
    now = timezone.now()
    target = _purpose(purpose)
    if target.legal_basis in NO_CHOICE_BASES:
        raise NotConsentBased()
    _check_method(target, action, method)
    alone = action in (EventType.GRANT, EventType.REQUEST) and method != Method.PARENTAL_CONSENT
    if alone and target.legal_basis == LegalBasis.CONSENT:
        jurisdiction = _check_age(subject_id, target, age, jurisdiction)
    version = _version(target, policy_version, now=now, current_only=action == EventType.GRANT)
    region = _jurisdiction(jurisdiction)
    ip_hash, ua_family = _evidence_columns(evidence)

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
) -> ConsentEvent:
    """Record that the subject consents to `purpose` under the policy version in force (naming
    another raises `PolicyNotCurrent`). Granting again while granted is recorded as a renewal.
    `actor_type`/`actor_id` name a staff member or system acting for the person.

    `gpc`: the request carries Global Privacy Control, which refuses a sale/sharing purpose
    unless `gpc_override`, the explicit choice the person makes in the portal.
    `age`: when known, a person below the age of digital consent cannot grant alone."""
    if method in _LINK_SALTS:
        raise InvalidMethod("Only following the e-mailed link records this kind of confirmation.")
    if gpc and not gpc_override and _purpose(purpose).is_sale_or_sharing:
        raise GlobalPrivacyControlOptOut()
    return _record(
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
    )


def consent_withdraw(
    *,
    subject_id: uuid.UUID,
    purpose: str,
    policy_version: str | None = None,
    method: str,
    evidence: Evidence | None = None,
    jurisdiction: str = "",
    actor_type: str = AuditActorType.PERSON,
    actor_id: str = "",
) -> ConsentEvent:
    """Record that the subject withdraws consent (or objects, for a legitimate-interest purpose).
    As easy as granting: no condition a grant does not have, and any published version may be named."""
    return _record(
        EventType.WITHDRAW,
        subject_id=subject_id,
        purpose=purpose,
        policy_version=policy_version,
        method=method,
        evidence=evidence,
        jurisdiction=jurisdiction,
        actor_type=actor_type,
        actor_id=actor_id,
    )


def consent_refuse(
    *,
    subject_id: uuid.UUID,
    purpose: str,
    policy_version: str | None = None,
    method: str,
    evidence: Evidence | None = None,
    jurisdiction: str = "",
    actor_type: str = AuditActorType.PERSON,
    actor_id: str = "",
) -> ConsentEvent:
    """Record that the subject said no when asked, so they are not asked again as if undecided."""
    return _record(
        EventType.REFUSE,
        subject_id=subject_id,
        purpose=purpose,
        policy_version=policy_version,
        method=method,
        evidence=evidence,
        jurisdiction=jurisdiction,
        actor_type=actor_type,
        actor_id=actor_id,
    )


def policy_version_check(*, purpose: str, label: str, text: str, effective_from: datetime | None = None) -> datetime:
    """Raise `InvalidPolicyVersion` if the version cannot be published as given; return when it
    would take effect. Separate from publishing so the admin form can show errors on their field."""
    return _check_new_version(_purpose(purpose), label=label, text=text, effective_from=effective_from)


def _check_new_version(target: Purpose, *, label: str, text: str, effective_from: datetime | None) -> datetime:
    now = timezone.now()
    when = now if effective_from is None else effective_from
    if not label or len(label) > 32 or label != label.strip():
        raise InvalidPolicyVersion("A version needs a label of at most 32 characters.", param="label")
    if not text.strip():
        raise InvalidPolicyVersion("A version needs its text.", param="text")
    if timezone.is_naive(when):
        raise InvalidPolicyVersion("Give the time with its time zone.", param="effective_from")
    if when < now - PUBLISH_GRACE:
        raise InvalidPolicyVersion("A version cannot take effect in the past.", param="effective_from")
    if target.versions.filter(label=label).exists():
        raise InvalidPolicyVersion("This purpose already has a version with this label.", param="label")
    latest = target.versions.order_by("-effective_from").values_list("effective_from", flat=True).first()
    if latest is not None and when <= latest:
        raise InvalidPolicyVersion("A version must take effect after the latest one.", param="effective_from")
    return when


def policy_version_publish(
    *, purpose: str, label: str, text: str, effective_from: datetime | None = None, is_material: bool = False
) -> PolicyVersion:
    """Publish a purpose's policy text, in force from `effective_from` (default: now). A material
    version makes earlier grants stop counting from then until the person consents again."""
    with transaction.atomic():
        # Publications for one purpose queue on its row, so two cannot both pass the order check.
        target = Purpose.objects.select_for_update().filter(slug=purpose).first() if isinstance(purpose, str) else None
        if target is None:
            raise UnknownPurpose()
        when = _check_new_version(target, label=label, text=text, effective_from=effective_from)
        return PolicyVersion.objects.create(
            purpose=target, label=label, text=text, effective_from=when, is_material=is_material
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


class _NothingToRecord(Exception):
    """Raised by a guard when, under the lock, the event turns out to be unneeded."""


def _not_opted_out(state: ConsentState, created: bool) -> None:
    if not created and state.status in (ConsentStatus.WITHDRAWN, ConsentStatus.REFUSED):
        raise _NothingToRecord


def consent_gpc_apply(*, subject_id: uuid.UUID, evidence: Evidence | None = None) -> list[ConsentEvent]:
    """Honour a Global Privacy Control signal for a signed-in person, once per purpose: withdraw
    each sale/sharing purpose they granted (or object, for legitimate interest) and refuse those
    not yet decided. A purpose already opted out of, or already answered by GPC once, is left
    alone, so an override the person then makes in the portal stands."""
    answered = set(
        ConsentEvent.objects.filter(subject_id=subject_id, method=Method.GPC).values_list("purpose_id", flat=True)
    )
    states = dict(
        ConsentState.objects.filter(subject_id=subject_id, purpose__is_sale_or_sharing=True).values_list(
            "purpose_id", "status"
        )
    )
    now = timezone.now()
    events = []
    purposes = (
        Purpose.objects.filter(is_sale_or_sharing=True, versions__effective_from__lte=now)
        .exclude(legal_basis__in=NO_CHOICE_BASES)
        .distinct()
    )
    for purpose in purposes:
        status = states.get(purpose.pk)
        if purpose.pk in answered or status in (ConsentStatus.WITHDRAWN, ConsentStatus.REFUSED):
            continue
        action = EventType.WITHDRAW if status in (ConsentStatus.GRANTED, ConsentStatus.PENDING) else EventType.REFUSE
        try:
            events.append(
                _record(
                    action,
                    subject_id=subject_id,
                    purpose=purpose.slug,
                    policy_version=None,
                    method=Method.GPC,
                    evidence=evidence,
                    jurisdiction="",
                    actor_type=AuditActorType.PERSON,
                    actor_id="",
                    guard=_not_opted_out,  # a parallel request may have just done it
                )
            )
        except _NothingToRecord:
            continue
    return events


# --- Age gate, double opt-in and parental consent ------------------------------------------------


def _check_age(subject_id: uuid.UUID, purpose: Purpose, age: int | None, jurisdiction: str) -> str:
    """The age gate (GDPR Art. 8, COPPA): refuse a person below the age of digital consent, or
    whose age is not known. The age is the caller's (a sign-up declaration) or comes from the
    birth date in the person's profile, with the profile's country as default jurisdiction.
    Returns the jurisdiction the event records."""
    if age is None or not jurisdiction:
        from profiles.gate import profile_age  # profiles depends on consent, not the reverse

        known_age, country = profile_age(subject_id=subject_id)
        age = known_age if age is None else age
        jurisdiction = jurisdiction or country
    if age is None:
        raise AgeUnknown()
    if age < digital_consent_age(purpose, jurisdiction):
        raise ParentalConsentRequired()
    return jurisdiction


def age_in_years(born: date, today: date | None = None) -> int:
    """Completed years between a birth date and `today` (default: the local date): the age the
    age gate compares with the age of digital consent."""
    today = today or timezone.localdate()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def digital_consent_age(purpose: Purpose, jurisdiction: str = "") -> int:
    """The age below which a person cannot consent alone: the country's age of digital consent
    (GDPR Art. 8; COPPA), or the purpose's own minimum if that is higher."""
    ages = settings.VAULT_DIGITAL_CONSENT_AGES
    country = (jurisdiction or settings.VAULT_CONTROLLER["jurisdiction"]).upper().split("-")[0]
    return max(ages.get(country, ages["default"]), purpose.min_age or 0)


_LINK_SALTS: dict[str, str] = {
    Method.DOUBLE_OPT_IN: "consent.double-opt-in",
    Method.PARENTAL_CONSENT: "consent.parental",
}
_LINK_VIEWS: dict[str, str] = {Method.DOUBLE_OPT_IN: "consent-confirm", Method.PARENTAL_CONSENT: "consent-parental"}


def _link(event: ConsentEvent, method: str) -> str:
    """A signed, expiring link naming only the request event (an opaque id): the token carries no
    personal data, and a newer request makes older links void."""
    token = signing.dumps(str(event.id), salt=_LINK_SALTS[method])
    return settings.VAULT_SITE_URL + reverse(_LINK_VIEWS[method], kwargs={"token": token})


def _not_granted(subject_id: uuid.UUID, purpose: str) -> Callable[[ConsentState, bool], None]:
    def guard(state: ConsentState, created: bool) -> None:
        from consent.selectors import consent_is_granted

        if (
            not created
            and state.status == ConsentStatus.GRANTED
            and consent_is_granted(subject_id=subject_id, purpose=purpose)
        ):
            raise AlreadyGranted()

    return guard


def _validity() -> str:
    seconds = settings.CONSENT_LINK_MAX_AGE_SECONDS
    return f"{seconds // 3600} hours" if seconds >= 7200 else f"{max(1, seconds // 60)} minutes"


def _request_and_mail(
    *,
    subject_id: uuid.UUID,
    purpose: str,
    method: str,
    jurisdiction: str,
    evidence: Evidence | None,
    age: int | None,
    gpc: bool,
    to: str,
    subject_line: str,
    body: str,
) -> ConsentEvent:
    """Record the request and send its link in one transaction: if the mail cannot be handed
    over, nothing stays pending. Mail errors are not logged with the address."""
    if gpc and _purpose(purpose).is_sale_or_sharing:
        raise GlobalPrivacyControlOptOut()
    with transaction.atomic():
        event = _record(
            EventType.REQUEST,
            subject_id=subject_id,
            purpose=purpose,
            policy_version=None,
            method=method,
            evidence=evidence,
            jurisdiction=jurisdiction,
            actor_type=AuditActorType.PERSON,
            actor_id="",
            age=age,
            guard=_not_granted(subject_id, purpose),
        )
        text = body.format(purpose=event.purpose.name, description=event.purpose.description, link=_link(event, method))
        try:
            send_mail(
                subject=subject_line.format(purpose=event.purpose.name),
                message=text,
                from_email=None,
                recipient_list=[to],
            )
        except (OSError, smtplib.SMTPException):
            raise MailNotSent() from None
    return event


def consent_request(
    *,
    subject_id: uuid.UUID,
    purpose: str,
    evidence: Evidence | None = None,
    jurisdiction: str = "",
    age: int | None = None,
    gpc: bool = False,
) -> ConsentEvent:
    """Ask for a purpose that needs double opt-in: the state becomes pending and the person gets
    an e-mail with a signed, expiring link; only following it grants. Asking again (the link
    expired, the mail was lost) sends a new link and voids the old one."""
    if not _purpose(purpose).requires_double_opt_in:
        raise InvalidMethod("This purpose is granted directly; it needs no confirmation.")
    email = account_email(subject_id=subject_id)
    if email is None:
        raise NoAccount()
    return _request_and_mail(
        subject_id=subject_id,
        purpose=purpose,
        method=Method.DOUBLE_OPT_IN,
        jurisdiction=jurisdiction,
        evidence=evidence,
        age=age,
        gpc=gpc,
        to=email,
        subject_line="Please confirm: {purpose}",
        body=(
            f"You asked to receive {{purpose}}. To confirm, open this link within {_validity()}:\n\n"
            "{link}\n\nIf you did not ask for this, ignore this message: nothing changes."
        ),
    )


def consent_parental_request(
    *,
    subject_id: uuid.UUID,
    purpose: str,
    parent_email: str,
    age: int | None = None,
    evidence: Evidence | None = None,
    jurisdiction: str = "",
    gpc: bool = False,
) -> ConsentEvent:
    """A person below the age of digital consent asks a parent or guardian: the parent gets a
    signed, expiring link, and their confirmation grants with method "parental consent".
    The parent's address is used to send that one message and is not stored."""
    target = _purpose(purpose)
    if age is None or not jurisdiction:
        from profiles.gate import profile_age

        known_age, country = profile_age(subject_id=subject_id)
        age, jurisdiction = known_age if age is None else age, jurisdiction or country
    if age is None:
        raise AgeUnknown()
    if age >= digital_consent_age(target, jurisdiction):
        raise ParentalConsentNotNeeded()
    own = account_email(subject_id=subject_id)
    if own is not None and parent_email.strip().lower() == own.lower():
        raise InvalidParentEmail()
    return _request_and_mail(
        subject_id=subject_id,
        purpose=purpose,
        method=Method.PARENTAL_CONSENT,
        jurisdiction=jurisdiction,
        evidence=evidence,
        age=None,
        gpc=gpc,
        to=parent_email,
        subject_line="Your child asks for your consent: {purpose}",
        body=(
            "Your child (or someone in your care) asked to allow: {purpose}.\n{description}\n\n"
            f"To consent on their behalf, open this link within {_validity()}:\n\n"
            "{link}\n\nIf you do not agree, ignore this message: nothing changes."
        ),
    )


def consent_link_request(*, token: str, method: str) -> ConsentEvent:
    """The request event a confirmation link names, if the link is genuine, unexpired and the
    latest one for that person and purpose."""
    try:
        event_id = signing.loads(token, salt=_LINK_SALTS[method], max_age=settings.CONSENT_LINK_MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise LinkExpired() from None
    except (signing.BadSignature, KeyError):
        raise InvalidLink() from None
    event = (
        ConsentEvent.objects.select_related("purpose", "policy_version")
        .filter(id=event_id, event_type=EventType.REQUEST, method=method)
        .first()
    )
    if event is None:
        raise InvalidLink()
    return event


def consent_link_confirm(*, token: str, method: str, evidence: Evidence | None = None) -> ConsentEvent:
    """Follow a double opt-in or parental link: grant the purpose under the version the request
    named (it must still be in force), if nothing happened since the request. Following the
    link again returns the grant it already made."""
    request = consent_link_request(token=token, method=method)

    def made_by_this_link() -> ConsentEvent | None:
        following = ConsentEvent.objects.filter(
            subject_id=request.subject_id, purpose=request.purpose, seq=request.seq + 1
        ).first()
        if following is not None and following.event_type == EventType.GRANT and following.method == method:
            return following
        return None

    def still_latest(state: ConsentState, created: bool) -> None:
        if state.last_seq != request.seq:
            raise InvalidLink("A newer choice or link replaced this one.")

    if (done := made_by_this_link()) is not None:
        return done
    parental = method == Method.PARENTAL_CONSENT
    try:
        return _record(
            EventType.GRANT,
            subject_id=request.subject_id,
            purpose=request.purpose.slug,
            policy_version=request.policy_version.label,
            method=method,
            evidence=evidence,
            jurisdiction=request.jurisdiction,
            # The parent is not a subject of ours: the audit names the act, not them.
            actor_type=AuditActorType.SYSTEM if parental else AuditActorType.PERSON,
            actor_id="consent.parental-link" if parental else "",
            guard=still_latest,
        )
    except InvalidLink:
        if (done := made_by_this_link()) is not None:  # the same link, posted twice at once
            return done
        raise


def consent_requests_expire(*, now: datetime | None = None) -> int:
    """Close requests whose link has expired: the state goes from pending to expired (an
    `expire` event), so nothing stays pending for ever. Idempotent: run it periodically."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.CONSENT_LINK_MAX_AGE_SECONDS)
    stale = ConsentState.objects.filter(status=ConsentStatus.PENDING, changed_at__lt=cutoff).select_related("purpose")
    expired = 0
    for state in stale.iterator():

        def still_pending(current: ConsentState, created: bool, seq: int = state.last_seq) -> None:
            if current.last_seq != seq:
                raise _NothingToRecord  # a choice came in meanwhile: nothing to expire

        try:
            _record(
                EventType.EXPIRE,
                subject_id=state.subject_id,
                purpose=state.purpose.slug,
                policy_version=None,
                method=_request_method(state),
                evidence=None,
                jurisdiction="",
                actor_type=AuditActorType.SYSTEM,
                actor_id="consent.expire-requests",
                guard=still_pending,
            )
            expired += 1
        except (_NothingToRecord, ConsentError):
            continue
    return expired


def _request_method(state: ConsentState) -> str:
    """An expiry is recorded with the method of the request it closes."""
    method = (
        ConsentEvent.objects.filter(subject_id=state.subject_id, purpose=state.purpose, seq=state.last_seq)
        .values_list("method", flat=True)
        .first()
    )
    return method or Method.DOUBLE_OPT_IN


# --- Bulk import ---------------------------------------------------------------------------------


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
    source knew; for the others the profile is read, as the age gate does. A pair given twice
    is recorded once.

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
            _check_method(purposes[slug], action, Method.IMPORT)
    versions = {slug: _version(purpose, None, now=now, current_only=True) for slug, purpose in purposes.items()}
    regions = {as_subject_id(s): _jurisdiction(code) for s, code in (jurisdictions or {}).items()}
    # Grants record the jurisdiction the age gate used (the profile's country when the source
    # gave none); withdrawals only the source's, as `_record` does.
    gated = _import_age_gate(
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


def _import_age_gate(
    pairs: list[tuple[uuid.UUID, Purpose]], ages: dict[uuid.UUID, int], regions: dict[uuid.UUID, str]
) -> dict[uuid.UUID, str]:
    """`_check_age` for many grants: the jurisdiction each person's grants record, or
    `AgeUnknown` / `ParentalConsentRequired` for the first person who may not consent alone.
    The profiles of those the source told nothing about are read in bulk, through the gate."""
    subjects = list(dict.fromkeys(s for s, _ in pairs))
    unknown = [s for s in subjects if s not in ages or not regions.get(s)]
    if unknown:
        from profiles.gate import profile_ages  # profiles depends on consent, not the reverse

        for chunk in batched(unknown, 5000):
            for subject_id, (age, country) in profile_ages(subject_ids=chunk).items():
                if subject_id not in ages and age is not None:
                    ages[subject_id] = age
                if not regions.get(subject_id):
                    regions[subject_id] = _jurisdiction(country)
    for subject_id, purpose in pairs:
        if subject_id not in ages:
            raise AgeUnknown(f"The age of a person is not known (subject {subject_id}).", param="grants")
        if ages[subject_id] < digital_consent_age(purpose, regions.get(subject_id, "")):
            raise ParentalConsentRequired(f"A person cannot consent alone (subject {subject_id}).", param="grants")
    return {s: regions.get(s, "") for s in subjects}


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
        occurred_at = timezone.now()  # taken under the locks, as `_record` does
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
