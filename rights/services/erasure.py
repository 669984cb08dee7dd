"""Erasure (GDPR Art. 17, CCPA right to delete), in two steps.

The request waits out a grace period in which the person may cancel; a legal hold set by staff
pauses it. Then `erasure_execute` makes the person unreadable at once, in a fixed number of
queries whatever they hold: sign-in refused and every session ended, provider tokens revoked
where the provider allows it (while the tokens can still be read), `subject.erased` written to
the core's outbox for the partners app, the erasure journalled outside the database and every
data key destroyed (`subject_keys_shred`; the audit log keeps a tombstone with no link to the
person). `erasure_purge` then deletes the rows in bounded batches, in the background: values,
history, documents, events, the consent ledger, export bundles and requests, social accounts,
e-mail addresses, authenticators, sessions and the account itself.
"""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.services import account_erase, account_erasure_begin
from accounts.social.revocation import social_tokens_revoke
from consent.services import consent_ledger_erase
from profiles.gate import Actor
from profiles.services import profile_data_erase
from rights.errors import ConfirmationRequired, ErasurePending, PersonErased
from rights.models import (
    OPEN_STATUSES,
    Channel,
    ExportBundle,
    Kind,
    ProviderDeletion,
    ProviderDeletionStatus,
    RightsRequest,
    Status,
    Verification,
)
from rights.services.requests import request_record, transition_audit
from rights.tasks import erasure_purge as purge_task
from vault.models import AuditActorType
from vault.outbox import outbox_emit
from vault.services import erasure_journal_replay, subject_keys_shred

ERASURE_ACTOR = Actor.system("rights.erasure")
ERASED_TOPIC = "subject.erased"


def grace_period() -> timedelta:
    return timedelta(hours=settings.RIGHTS_ERASURE_GRACE_HOURS)


def erasure_request(
    *, subject_id: uuid.UUID, channel: str, verification: str, actor: Actor, confirm: bool, now: datetime | None = None
) -> RightsRequest:
    """Ask for erasure, confirmed explicitly. A verified request runs when its grace period
    ends; one received offline waits for staff to verify it (the grace period starts then)."""
    if not confirm:
        raise ConfirmationRequired()
    now = now or timezone.now()
    with transaction.atomic():
        request = request_record(
            subject_id=subject_id, kind=Kind.ERASURE, channel=channel, verification=verification, actor=actor, now=now
        )
        if request.status == Status.VERIFIED:
            erasure_grace_start(request, now)
    return request


def erasure_grace_start(request: RightsRequest, now: datetime) -> None:
    request.grace_ends_at = now + grace_period()
    request.save(update_fields=["grace_ends_at", "updated_at"])


def erasures_due(*, now: datetime | None = None) -> list[uuid.UUID]:
    """Erasures whose grace period is over and that no legal hold pauses."""
    return list(
        RightsRequest.objects.filter(
            kind=Kind.ERASURE,
            status__in=(Status.VERIFIED, Status.EXTENDED),
            legal_hold=False,
            grace_ends_at__lte=now or timezone.now(),
        ).values_list("id", flat=True)
    )


def erasure_execute(*, request_id: uuid.UUID, now: datetime | None = None) -> uuid.UUID | None:
    """Make the person unreadable now; returns their subject id (for `erasure_purge`), or None
    when the request is not due, is on hold or another worker took it."""
    now = now or timezone.now()
    claimed = RightsRequest.objects.filter(
        pk=request_id,
        kind=Kind.ERASURE,
        status__in=(Status.VERIFIED, Status.EXTENDED),
        legal_hold=False,
        grace_ends_at__lte=now,
    ).update(status=Status.IN_PROGRESS, updated_at=now)
    if not claimed:
        return None
    request = RightsRequest.objects.get(pk=request_id)
    subject_id = request.subject_id
    transition_audit(request, "start", ERASURE_ACTOR)
    account_erasure_begin(subject_id=subject_id)
    social_tokens_revoke(subject_id=subject_id)
    with transaction.atomic():
        outbox_emit(topic=ERASED_TOPIC, payload={"subject_id": str(subject_id)})
        # The last entry that can name the person: the shred unlinks their audit pseudonym.
        transition_audit(request, "complete", ERASURE_ACTOR)
        RightsRequest.objects.filter(pk=request_id).update(status=Status.COMPLETED, completed_at=now, progress=100)
        # A provider's deletion code that waited on this erasure completes with it, unlinked.
        ProviderDeletion.objects.filter(request_id=request_id).update(
            status=ProviderDeletionStatus.COMPLETED, completed_at=now, request_id=None
        )
    subject_keys_shred(subject_id=subject_id, actor_type=AuditActorType.SYSTEM, actor_id=ERASURE_ACTOR.id)
    return subject_id


def erasure_purge(*, subject_id: uuid.UUID, batch_size: int = 1000) -> int:
    """Delete one bounded batch of an erased person's rows; returns how many rows went (0 when
    nothing is left). Called after `erasure_execute`, repeatedly, by a background task."""
    deleted = profile_data_erase(subject_id=subject_id, batch_size=batch_size)
    if deleted:
        return deleted
    deleted = consent_ledger_erase(subject_id=subject_id)
    deleted += ExportBundle.objects.filter(subject_id=subject_id).delete()[0]
    deleted += RightsRequest.objects.filter(subject_id=subject_id).delete()[0]
    account_erase(subject_id=subject_id)
    return deleted


def erasure_purge_all(*, subject_id: uuid.UUID, batch_size: int = 1000) -> int:
    """`erasure_purge` until nothing is left, in this process (commands; the tasks chain batches)."""
    total = 0
    while deleted := erasure_purge(subject_id=subject_id, batch_size=batch_size):
        total += deleted
    return total


def erasure_now(*, subject_id: uuid.UUID, actor: Actor, note: str) -> uuid.UUID | None:
    """An operator's erasure (a request received offline and verified by them, `note` saying
    how): recorded as a request like any other, with no grace period, then run and purged here."""
    now = timezone.now()
    with transaction.atomic():
        request = request_record(
            subject_id=subject_id,
            kind=Kind.ERASURE,
            channel="offline",
            verification="staff",
            actor=actor,
            note=note,
            now=now,
        )
        request.grace_ends_at = now
        request.save(update_fields=["grace_ends_at", "updated_at"])
    erased = erasure_execute(request_id=request.pk, now=now)
    if erased is not None:
        erasure_purge_all(subject_id=erased)
    return erased


def erasure_by_provider(*, subject_id: uuid.UUID, provider: str) -> uuid.UUID | None:
    """A sign-in provider asked, in a request signed with our app secret, that the person be
    deleted (Meta's data deletion callback, with `SOCIAL_FACEBOOK_DELETION_SCOPE=account`):
    recorded as an erasure request (channel and verification "provider") with no grace period,
    and run now; the rows are purged in the background. An erasure already open is verified and
    run now instead, unless a legal hold pauses it. None once the person is unreadable (or was
    erased already); the waiting request's id when the erasure waits (a legal hold, or another
    worker runs it), so the provider's confirmation can complete when it runs."""
    now = timezone.now()
    actor = Actor.system(f"provider.{provider}"[:64])
    try:
        with transaction.atomic():
            request = request_record(
                subject_id=subject_id,
                kind=Kind.ERASURE,
                channel=Channel.PROVIDER,
                verification=Verification.PROVIDER,
                actor=actor,
                now=now,
            )
            request.grace_ends_at = now
            request.save(update_fields=["grace_ends_at", "updated_at"])
    except PersonErased:
        return None
    except ErasurePending:
        with transaction.atomic():
            request = RightsRequest.objects.select_for_update().get(
                subject_id=subject_id, kind=Kind.ERASURE, status__in=OPEN_STATUSES
            )
            if request.status == Status.RECEIVED:
                request.status, request.verification, request.verified_at = (
                    Status.VERIFIED,
                    Verification.PROVIDER,
                    now,
                )
                transition_audit(request, "verify", actor)
            request.grace_ends_at = now
            request.save(update_fields=["status", "verification", "verified_at", "grace_ends_at", "updated_at"])
    erased = erasure_execute(request_id=request.pk, now=now)
    if erased is None:
        return request.pk
    transaction.on_commit(lambda: purge_task.delay(str(erased)))
    return None


def erasure_replay() -> list[uuid.UUID]:
    """After restoring a database backup: everyone the erasure journal names (kept outside the
    database) is made unreadable again (their keys destroyed, `erasure_journal_replay`), then
    signed out and deleted again, row by row. Idempotent."""
    subjects = erasure_journal_replay()
    for subject_id in subjects:
        account_erasure_begin(subject_id=subject_id)
        erasure_purge_all(subject_id=subject_id)
    return subjects
