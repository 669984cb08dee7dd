"""Access and export requests (GDPR Art. 15 and 20): the bundle is built by a Celery job, kept
sealed under the person's data key until it expires, and handed only to its owner.

The zip is built in memory: a person's data is some megabytes at most today. A person with far
more (years of events) would need the zip streamed to a temporary file and stored in chunks.
"""

import hashlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.selectors import account_exists
from profiles.errors import PersonErased as ProfilePersonErased
from profiles.gate import Actor, rights_rows_unseal
from rights.errors import ExportExpired, RequestNotFound
from rights.export.formats import export_files, zip_bytes
from rights.export.parts import export_parts_collect
from rights.models import ExportBundle, Kind, RightsRequest, Status
from rights.services.requests import request_complete, request_start
from vault.crypto import SubjectErased, subject_is_erased
from vault.fields import seal

logger = logging.getLogger(__name__)

EXPORT_KINDS = (Kind.ACCESS, Kind.EXPORT)
CLAIMABLE = (Status.VERIFIED, Status.EXTENDED)
EXPORT_ACTOR = Actor.system("rights-export")


def export_zip_build(*, subject_id: uuid.UUID, actor: Actor, on_progress: Callable[[int], None] | None = None) -> bytes:
    """The person's data as one zip (see `rights.export.formats.FILES`), read through the gate
    for their rights. `on_progress` hears 0 to 100, rising."""
    report = on_progress or (lambda percent: None)
    generated_at = timezone.now().replace(microsecond=0)
    parts = export_parts_collect(subject_id=subject_id, actor=actor, generated_at=generated_at, on_progress=report)
    content = zip_bytes(export_files(parts), stamp=generated_at)
    report(100)
    return content


def _stale_before(now: datetime) -> datetime:
    """A build in progress for longer than a task may run was lost with its worker (the hard
    time limit killed it, or the worker died): its request may be claimed again."""
    return now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


def _claim(request_id: uuid.UUID, actor: Actor) -> tuple[RightsRequest, str] | None:
    """Take the request for this worker: one conditional UPDATE, so two workers never both
    build. Returns the request, marked in progress (audited), and the status it had."""
    now = timezone.now()
    with transaction.atomic():
        request = RightsRequest.objects.filter(pk=request_id, kind__in=EXPORT_KINDS).first()
        if request is None:
            return None
        previous = request.status
        claimable = Q(status__in=CLAIMABLE) | Q(status=Status.IN_PROGRESS, updated_at__lt=_stale_before(now))
        claimed = (
            RightsRequest.objects.filter(claimable, pk=request_id, status=previous, kind__in=EXPORT_KINDS)
            .exclude(bundle__isnull=False)
            .update(status=Status.IN_PROGRESS, progress=0, updated_at=now)
        )
        if not claimed:
            return None
        request.refresh_from_db()
        request_start(request, actor)
    # A build that was lost mid-way goes back to "verified" if it fails again.
    return request, (Status.VERIFIED if previous == Status.IN_PROGRESS else previous)


def _release(request: RightsRequest, status: str) -> None:
    """Give the request back (status as before) so a retry can claim it again."""
    RightsRequest.objects.filter(pk=request.pk, status=Status.IN_PROGRESS).update(
        status=status, progress=0, updated_at=timezone.now()
    )


def _progress_recorder(request: RightsRequest) -> Callable[[int], None]:
    """Records progress on the request, only when it moved by 10 points or more: a few UPDATEs
    per export, whatever its size. Each also shows the claim is alive (`updated_at`)."""
    last = [-10]

    def record(percent: int) -> None:
        if percent - last[0] < 10 or percent >= 100:
            return
        last[0] = percent
        RightsRequest.objects.filter(pk=request.pk, status=Status.IN_PROGRESS).update(
            progress=percent, updated_at=timezone.now()
        )

    return record


def _erased(subject_id: uuid.UUID) -> bool:
    return subject_is_erased(subject_id) or not account_exists(subject_id=subject_id)


def export_bundle_build(*, request_id: uuid.UUID) -> ExportBundle | None:
    """The job of an access or export request: claim it (only a verified or extended one; two
    workers never both build), build the zip, store it sealed under the person's key until
    `RIGHTS_EXPORT_TTL_HOURS` from now, and complete the request.

    Idempotent: a request already built, taken by another worker, closed or not an access or
    export request is left alone; the request's bundle, if any, is returned. A person erased
    before or during the build ends the job quietly (None). Any other failure gives the request
    back, so the task's retry can claim it again."""
    actor = EXPORT_ACTOR
    subject_id = RightsRequest.objects.filter(pk=request_id).values_list("subject_id", flat=True).first()
    if subject_id is None or _erased(subject_id):
        return None
    claim = _claim(request_id, actor)
    if claim is None:
        return ExportBundle.objects.filter(request_id=request_id).first()
    request, previous = claim
    try:
        content = export_zip_build(subject_id=subject_id, actor=actor, on_progress=_progress_recorder(request))
        now = timezone.now()
        bundle = ExportBundle(
            id=uuid.uuid4(),
            subject_id=subject_id,
            request=request,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            expires_at=now + timedelta(hours=settings.RIGHTS_EXPORT_TTL_HOURS),
        )
        seal(bundle, "content", content)
        with transaction.atomic():
            # Staff may have closed the request meanwhile (a rejection): then nothing is kept.
            current = RightsRequest.objects.select_for_update().filter(pk=request.pk).first()
            if current is None or current.status != Status.IN_PROGRESS:
                logger.info("Export of request %s discarded: the request changed while it was built", request_id)
                return None
            bundle.save(force_insert=True)
            request_complete(current, actor)
    except (ProfilePersonErased, SubjectErased):
        logger.info("Export of request %s stopped: the person was erased", request_id)
        _release(request, previous)
        return None
    except BaseException:
        _release(request, previous)
        raise
    return bundle


def export_download(*, subject_id: uuid.UUID, bundle_id: uuid.UUID, actor: Actor) -> tuple[bytes, ExportBundle]:
    """The zip of the person's own bundle, decrypted through the gate (audited), and the bundle
    (size, sha256 for the person to check). Another person's bundle, or none, is
    `RequestNotFound` alike; an expired one `ExportExpired`. The first download is recorded."""
    bundle = ExportBundle.objects.filter(pk=bundle_id, subject_id=subject_id).first()
    if bundle is None:
        raise RequestNotFound()
    now = timezone.now()
    if bundle.expires_at <= now:
        raise ExportExpired()
    (content,) = rights_rows_unseal(subject_id=subject_id, rows=[bundle], field="content", actor=actor)
    if bundle.downloaded_at is None:
        ExportBundle.objects.filter(pk=bundle.pk, downloaded_at__isnull=True).update(downloaded_at=now)
        bundle.downloaded_at = now
    return content, bundle


def exports_expire(*, now: datetime | None = None) -> int:
    """Delete the bundles past their expiry (Celery beat, hourly); how many were deleted."""
    now = now or timezone.now()
    deleted = 0
    while True:
        ids = list(ExportBundle.objects.filter(expires_at__lte=now).values_list("pk", flat=True)[:100])
        if not ids:
            return deleted
        deleted += ExportBundle.objects.filter(pk__in=ids).delete()[1].get(ExportBundle._meta.label, 0)
