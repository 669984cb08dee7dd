"""Audience export: a segment's members for a purpose, with the permitted fields, as CSV or JSON
Lines, a bounded page per request, streamed, with an opaque signed cursor to the next page.

Streamed with cursor pagination rather than built by a job: nothing personal is ever written
to a file or a table in plaintext, a page is at most `PARTNERS_EXPORT_PAGE` people, and the
values are read through the gate `PARTNERS_EXPORT_BATCH` people at a time while the page
streams. Consent is checked at export time (the gate's bulk read leaves out anyone who withdrew
since the segment was computed, or who restricted processing), so a stale membership never
exports anyone who no longer consents.

Every export is audited with its size: each batch read gets one audit entry naming the people
read in it (action `profile.read`, the client as actor, the purpose and the field names;
`audit_record_batch`: each person's "who accessed my data" lists it); when the page ends, one more
entry (`partners.audience_export`, about no one) and a row of the export log (`SegmentExport`:
rows and bytes) record the page under the same request id.
"""

import contextvars
import csv
import io
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import connections
from django.utils import timezone

from partners.errors import (
    FieldsNotGranted,
    InvalidCursor,
    InvalidExport,
    PurposeNotGranted,
    SegmentNotReady,
    StaleCursor,
)
from partners.models import PartnerClient, Segment, SegmentExport, SegmentMember, SegmentStatus
from profiles.gate import Actor, profile_read_many
from profiles.selectors import unscoped_field_definitions
from vault.audit import audit_record
from vault.log import request_id_var

FORMATS = ("csv", "jsonl")
_SALT = "partners.audience-export"


@dataclass(frozen=True)
class ExportPage:
    """One page of an export, planned: who is on it (pairwise id, subject id), what is read,
    and the cursor to the next page (None on the last)."""

    client: PartnerClient
    segment: Segment
    purpose: str
    fields: list[str]
    format: str
    members: list[tuple[str, uuid.UUID]]
    next_cursor: str | None
    request_id: str  # the request's, taken when planned: the body streams after it returned


def audience_fields(*, client: PartnerClient, purpose: str) -> list[str]:
    """The fields an export for `purpose` may carry: the client's scope, less special-category
    fields, that serve the purpose, in the schema's order."""
    definitions = unscoped_field_definitions().filter(
        key__in=client.fields, purposes__slug=purpose, is_special_category=False, deprecated_at=None
    )
    return list(dict.fromkeys(definitions.values_list("key", flat=True)))


def _cursor_read(cursor: str, client: PartnerClient, segment: Segment) -> int:
    try:
        found = signing.loads(cursor, salt=_SALT)
    except signing.BadSignature:
        raise InvalidCursor() from None
    if not isinstance(found, dict) or found.get("c") != client.pk.hex or found.get("s") != segment.pk.hex:
        raise InvalidCursor()
    if segment.generation is None or found.get("g") != segment.generation.hex:
        raise StaleCursor()
    after = found.get("a")
    if type(after) is not int:
        raise InvalidCursor()
    return after


def audience_export_plan(
    *,
    client: PartnerClient,
    segment: Segment,
    purpose: str | None = None,
    fields: list[str] | None = None,
    format: str = "csv",
    cursor: str | None = None,
    limit: int | None = None,
) -> ExportPage:
    """Check an export request and take its page of members (one query; nothing decrypted).

    `purpose` defaults to the segment's, `fields` to every field the export may carry for it;
    a field asked outside them is a 403 naming it, never silently left out."""
    purpose = purpose or segment.purpose
    if purpose not in client.purposes:
        raise PurposeNotGranted(param="purpose")
    if format not in FORMATS:
        raise InvalidExport("format is csv or jsonl.", param="format")
    permitted = audience_fields(client=client, purpose=purpose)
    if fields:
        refused = [key for key in dict.fromkeys(fields) if key not in permitted]
        if refused:
            raise FieldsNotGranted(f"This client may not export these fields for this purpose: {', '.join(refused)}.")
        chosen = list(dict.fromkeys(fields))
    else:
        chosen = permitted
    if not chosen:
        raise FieldsNotGranted("No field in this client's scope serves this purpose.")
    now = timezone.now()
    if (
        segment.status == SegmentStatus.FAILED
        or segment.generation is None
        or (segment.expires_at is not None and segment.expires_at <= now)
    ):
        raise SegmentNotReady()
    size = min(limit or settings.PARTNERS_EXPORT_PAGE, settings.PARTNERS_EXPORT_PAGE)
    after = _cursor_read(cursor, client, segment) if cursor else 0
    rows = list(
        SegmentMember.objects.filter(segment=segment, generation=segment.generation, id__gt=after, expires_at__gt=now)
        .order_by("id")
        .values_list("id", "person__pairwise", "person__subject_id")[:size]
    )
    following = None
    if len(rows) == size:
        payload = {"c": client.pk.hex, "s": segment.pk.hex, "g": segment.generation.hex, "a": rows[-1][0]}
        following = signing.dumps(payload, salt=_SALT)
    return ExportPage(
        client=client,
        segment=segment,
        purpose=purpose,
        fields=chosen,
        format=format,
        members=[(pairwise, subject) for _, pairwise, subject in rows],
        next_cursor=following,
        request_id=request_id_var.get(),
    )


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime | Decimal | uuid.UUID):
        return str(value)
    return value


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list):
        return ";".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=_plain)
    return _plain(value)


def audience_export_stream(*, page: ExportPage, batch: int | None = None) -> Iterator[bytes]:
    """The page's bytes, batch by batch: each batch read through the gate (consent at export
    time; one audit entry naming the people read), then encoded. When the page ends, or the reader
    goes away, the export is logged with the number of people and bytes sent."""
    request_id = page.request_id
    token = request_id_var.set(request_id)  # a streamed body runs after the middleware returned
    actor = Actor.partner(page.client.slug)
    size = batch or settings.PARTNERS_EXPORT_BATCH
    chunks = [page.members[start : start + size] for start in range(0, len(page.members), size)]
    rows = sent = 0

    def read(chunk: list[tuple[str, uuid.UUID]]) -> dict[uuid.UUID, dict[str, Any]]:
        return profile_read_many(
            subject_ids=[subject for _, subject in chunk], fields=page.fields, purpose=page.purpose, actor=actor
        )

    # SQLite takes one writer at a time (the audit appends): batches are read one by one there.
    parallel = connections["default"].vendor == "postgresql"
    workers = min(settings.PARTNERS_EXPORT_WORKERS, len(chunks)) if parallel else 1
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        if page.format == "csv":
            yield _csv_line(["person", *page.fields])
        if pool is None:
            reads: Iterator[dict[uuid.UUID, dict[str, Any]]] = map(read, chunks)
        else:
            # Batches read ahead on their own connections: one waits on the database while
            # another decrypts. Each worker runs in a copy of this context (the request id).
            futures = [pool.submit(contextvars.copy_context().run, _on_own_connection, read, chunk) for chunk in chunks]
            reads = (future.result() for future in futures)
        for chunk, found in zip(chunks, reads, strict=True):
            out = _encode(page, chunk, found)
            rows += len(found)
            sent += len(out)
            yield out
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        _log(page, rows, sent, request_id)
        request_id_var.reset(token)


def _on_own_connection[T](call: Callable[[Any], T], argument: Any) -> T:
    """`call(argument)` in a worker thread, which opens its own database connection: closed
    after, so no thread leaves one behind."""
    try:
        return call(argument)
    finally:
        connections.close_all()


def _csv_line(cells: list[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue().encode()


def _encode(page: ExportPage, chunk: list[tuple[str, uuid.UUID]], read: dict[uuid.UUID, dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    fields = page.fields
    blanks = [""] * len(fields)
    if page.format == "csv":
        writer = csv.writer(buffer, lineterminator="\n")
        # Text, by far the most common value, goes as it is: a call per cell cost more than the
        # decryption of that cell.
        writer.writerows(
            [pairwise, *(v if type(v) is str else _csv_cell(v) for v in map(values.get, fields, blanks))]
            for pairwise, subject in chunk
            if (values := read.get(subject)) is not None
        )
    else:
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_plain).encode
        for pairwise, subject in chunk:
            values = read.get(subject)
            if values is not None:
                buffer.write(dumps({"person": pairwise, **{key: values[key] for key in fields if key in values}}))
                buffer.write("\n")
    return buffer.getvalue().encode()


def _log(page: ExportPage, rows: int, sent: int, request_id: str) -> None:
    SegmentExport.objects.create(
        segment=page.segment,
        client=page.client,
        purpose=page.purpose,
        fields=page.fields,
        format=page.format,
        rows=rows,
        bytes=sent,
        request_id=request_id[:64],
    )
    audit_record(
        **Actor.partner(page.client.slug).audit(),
        action="partners.audience_export",
        purpose=page.purpose,
        fields=page.fields,
        request_id=request_id,
    )
