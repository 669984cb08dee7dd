"""Consent confirmed by following an e-mailed link: double opt-in (the person proves the address)
and parental consent (a parent consents for someone below the age of digital consent). A request
records a pending state and mails a signed, expiring link; following it grants.

The person's own address comes from the function `CONSENT_MAIL_ADDRESS_SOURCE` names (accounts
provides it): consent sits below accounts and must not import it."""

import smtplib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from consent.errors import (
    AgeUnknown,
    AlreadyGranted,
    ConsentError,
    GlobalPrivacyControlOptOut,
    InvalidLink,
    InvalidMethod,
    InvalidParentEmail,
    LinkExpired,
    LinkReplaced,
    LinkUsed,
    MailNotSent,
    NoAccount,
    ParentalConsentNotNeeded,
)
from consent.models import ConsentEvent, ConsentState, ConsentStatus, EventType, Method
from consent.services.age_gate import age_known, digital_consent_age
from consent.services.evidence import Evidence
from consent.services.ledger import NothingToRecord, event_record
from consent.services.policies import purpose_named
from vault.models import AuditActorType

# One entry per method of `ledger.LINK_METHODS`.
_LINK_SALTS: dict[str, str] = {
    Method.DOUBLE_OPT_IN: "consent.double-opt-in",
    Method.PARENTAL_CONSENT: "consent.parental",
}
_LINK_VIEWS: dict[str, str] = {Method.DOUBLE_OPT_IN: "consent-confirm", Method.PARENTAL_CONSENT: "consent-parental"}


def _account_address(subject_id: uuid.UUID) -> str | None:
    """The address of the person's active account, or None: asked of `CONSENT_MAIL_ADDRESS_SOURCE`,
    a function taking `subject_id` (default: `accounts.selectors.account_email`)."""
    source: Callable[..., str | None] = import_string(settings.CONSENT_MAIL_ADDRESS_SOURCE)
    return source(subject_id=subject_id)


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
    birth_date: date | None,
    gpc: bool,
    to: str,
    subject_line: str,
    body: str,
) -> ConsentEvent:
    """Record the request and send its link in one transaction: if the mail cannot be handed
    over, nothing stays pending. Mail errors are not logged with the address. The mail speaks
    in words: it names the purpose, never a person or an internal id (the link's token names
    only the request)."""
    if gpc and purpose_named(purpose).is_sale_or_sharing:
        raise GlobalPrivacyControlOptOut()
    with transaction.atomic():
        event = event_record(
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
            birth_date=birth_date,
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
    birth_date: date | None = None,
    gpc: bool = False,
) -> ConsentEvent:
    """Ask for a purpose that needs double opt-in: the state becomes pending and the person gets
    an e-mail with a signed, expiring link; only following it grants. Asking again (the link
    expired, the mail was lost) sends a new link and voids the old one. `age` and `birth_date`
    as for `consent_grant`."""
    if not purpose_named(purpose).requires_double_opt_in:
        raise InvalidMethod("This purpose is granted directly; it needs no confirmation.")
    email = _account_address(subject_id)
    if email is None:
        raise NoAccount()
    return _request_and_mail(
        subject_id=subject_id,
        purpose=purpose,
        method=Method.DOUBLE_OPT_IN,
        jurisdiction=jurisdiction,
        evidence=evidence,
        age=age,
        birth_date=birth_date,
        gpc=gpc,
        to=email,
        subject_line="Please confirm: {purpose}",
        body=(
            "The account registered to this address asked to allow: {purpose}.\n"
            "{description}\n\n"
            f"If that was you, open this link within {_validity()} to confirm:\n\n"
            "{link}\n\nIf you did not ask for this, ignore this message: nothing changes."
        ),
    )


def consent_parental_request(
    *,
    subject_id: uuid.UUID,
    purpose: str,
    parent_email: str,
    age: int | None = None,
    birth_date: date | None = None,
    evidence: Evidence | None = None,
    jurisdiction: str = "",
    gpc: bool = False,
) -> ConsentEvent:
    """A person below the age of digital consent asks a parent or guardian: the parent gets a
    signed, expiring link, and their confirmation grants with method "parental consent".
    The parent's address is used to send that one message and is not stored. `age` and
    `birth_date` as for `consent_grant`."""
    target = purpose_named(purpose)
    age, jurisdiction = age_known(subject_id, age, jurisdiction, birth_date)
    if age is None:
        raise AgeUnknown()
    if age >= digital_consent_age(target, jurisdiction):
        raise ParentalConsentNotNeeded()
    own = _account_address(subject_id)
    if own is not None and parent_email.strip().lower() == own.lower():
        raise InvalidParentEmail()
    return _request_and_mail(
        subject_id=subject_id,
        purpose=purpose,
        method=Method.PARENTAL_CONSENT,
        jurisdiction=jurisdiction,
        evidence=evidence,
        age=None,
        birth_date=None,
        gpc=gpc,
        to=parent_email,
        subject_line="A request for your consent as a parent or guardian: {purpose}",
        body=(
            "Someone who gave this address as their parent's or guardian's asks you to allow: {purpose}.\n"
            "{description}\n\n"
            "They are below the age at which the law lets them agree to this on their own. "
            f"If you are their parent or guardian and agree, open this link within {_validity()}:\n\n"
            "{link}\n\nIf you do not know about this, or do not agree, ignore this message: nothing changes. "
            "We used your address only to send this message and have not kept it."
        ),
    )


@dataclass(frozen=True)
class LinkState:
    """What a genuine confirmation link names, and where things stand now: what its page shows,
    and what decides whether following it grants."""

    request: ConsentEvent  # the request the link names
    used_by: ConsentEvent | None  # the grant that following this link recorded, if any
    status: str  # the person's current status for the purpose (a stored `ConsentStatus`)
    changed_at: datetime | None  # since when
    last_seq: int  # the sequence number of their latest event for the purpose
    expired: bool  # older than `CONSENT_LINK_MAX_AGE_SECONDS`

    @property
    def stands(self) -> bool:
        """The link was followed and what it recorded is still the person's latest choice."""
        return self.used_by is not None and self.last_seq == self.used_by.seq

    @property
    def status_label(self) -> str:
        return ConsentStatus(self.status).label if self.status in ConsentStatus.values else self.status

    def refusal(self) -> ConsentError | None:
        """The error that following the link now meets, or None when it grants (or already did and
        that still stands): used and since replaced, expired, or replaced before it was used."""
        if self.stands:
            return None
        if self.used_by is not None:
            return LinkUsed()
        if self.expired:
            return LinkExpired()
        if self.last_seq != self.request.seq:
            return LinkReplaced()
        return None


def _link_event_id(token: str, method: str) -> tuple[str, bool]:
    """The request event id a link names, and whether the link has expired. A link we did not
    sign for this use is `InvalidLink`; an expired one is still ours, and still says which
    request it was for."""
    salt = _LINK_SALTS.get(method)
    if salt is None:
        raise InvalidLink()
    try:
        return signing.loads(token, salt=salt, max_age=settings.CONSENT_LINK_MAX_AGE_SECONDS), False
    except signing.SignatureExpired:
        return signing.loads(token, salt=salt), True
    except signing.BadSignature:
        raise InvalidLink() from None


def consent_link_state(*, token: str, method: str) -> LinkState:
    """Where a confirmation link stands (`InvalidLink` if it is not a genuine one for `method`):
    its page says whether following it grants, or what happened instead."""
    event_id, expired = _link_event_id(token, method)
    request = (
        ConsentEvent.objects.select_related("purpose", "policy_version")
        .filter(id=event_id, event_type=EventType.REQUEST, method=method)
        .first()
    )
    if request is None:
        raise InvalidLink()
    following = (
        ConsentEvent.objects.filter(subject_id=request.subject_id, purpose=request.purpose, seq=request.seq + 1)
        .only("id", "seq", "event_type", "method", "occurred_at")
        .first()
    )
    used_by = None
    if following is not None and following.event_type == EventType.GRANT and following.method == method:
        used_by = following
    current = (
        ConsentState.objects.filter(subject_id=request.subject_id, purpose=request.purpose)
        .values_list("status", "last_seq", "changed_at")
        .first()
    )
    status, last_seq, changed_at = current or ("", request.seq, None)
    return LinkState(
        request=request, used_by=used_by, status=status, changed_at=changed_at, last_seq=last_seq, expired=expired
    )


def consent_link_confirm(*, token: str, method: str, evidence: Evidence | None = None) -> ConsentEvent:
    """Follow a double opt-in or parental link: grant the purpose under the version the request
    named (it must still be in force), if nothing happened since the request. Following the link
    again while its grant stands returns that grant; once a later choice replaced it (a
    withdrawal), following it again is `LinkUsed` and records nothing: a link grants once."""
    link = consent_link_state(token=token, method=method)
    if link.stands and link.used_by is not None:
        return link.used_by
    if (refusal := link.refusal()) is not None:
        raise refusal
    request = link.request

    def still_latest(state: ConsentState, created: bool) -> None:
        if state.last_seq != request.seq:
            raise LinkReplaced()

    parental = method == Method.PARENTAL_CONSENT
    try:
        return event_record(
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
    except LinkReplaced:
        again = consent_link_state(token=token, method=method)
        if again.stands and again.used_by is not None:  # the same link, posted twice at once
            return again.used_by
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
                raise NothingToRecord  # a choice came in meanwhile: nothing to expire

        try:
            event_record(
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
        except (NothingToRecord, ConsentError):
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
