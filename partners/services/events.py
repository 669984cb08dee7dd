"""Event ingestion: a partner client posts transactional and behavioral events (orders, product
views, e-mail engagement) about the people it knows by pairwise id, one or a batch at a time.

Each event is read strictly (malformed: 400 for that item), must be of a kind the client may
post (403), name a person this client knows who consented to the purpose the kind needs (404
`unknown_person` otherwise, the same answer either way so consent state does not leak), and is
then written through the gate (`profile_events_write`: sealed, one transaction, audited per
person). Refused items are counted and listed by index; nothing of them is stored.

An `Idempotency-Key` makes a retry safe: the answer is kept (keyed hashes of the key and of the
body, never the body) and a retry with the same key and body gets it again without storing
anything; the same key with another body is refused (422, as the IETF draft says).
"""

import functools
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from partners.errors import (
    IdempotencyKeyReused,
    InvalidEvent,
    InvalidIdempotencyKey,
    KindNotGranted,
    TooManyEvents,
    UnknownPerson,
)
from partners.models import IngestionRequest, PartnerClient
from partners.selectors import subjects_of
from profiles.errors import AccessDenied, SourceNotAllowed
from profiles.gate import Actor, EventWrite, profile_events_write
from profiles.models import Shape, Source
from profiles.selectors import record_kind_slugs
from vault.crypto import SubjectErased
from vault.errors import ApplicationError, InvalidInput
from vault.keys import get_provider

MAX_SKEW = timedelta(minutes=5)  # how far in the future a clock may put `occurred_at`
EVENT_KEYS = frozenset({"person", "kind", "occurred_at", "body"})
_PERSON = re.compile(r"^[a-z0-9]{1,64}$")
_KIND = re.compile(r"^[a-z0-9_-]{1,64}$")
_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")


@dataclass(frozen=True)
class IngestionAnswer:
    """What the API answers: its status and body, and whether it is a replay."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class _Draft:
    person: str
    kind: str
    occurred_at: datetime
    body: dict[str, Any]


def partner_events_ingest(
    *, client: PartnerClient, payload: Any, raw_body: bytes, idempotency_key: str | None = None
) -> IngestionAnswer:
    """Ingest one event (`payload` is the event) or a batch (`{"events": [...]}`).

    A batch answers 200 with `accepted`, `refused` and the `refusals` by index, unless every
    item is malformed (400, the problems named `events.<index>.<part>`). One event answers 201,
    or its refusal as an error (400, 403 or 404). A batch over `PARTNERS_EVENTS_MAX_BATCH`
    is `TooManyEvents` (413). With `idempotency_key`, a 2xx answer is kept for
    `PARTNERS_IDEMPOTENCY_HOURS` and given again for the same key and `raw_body`; errors are
    not kept (nothing was stored: the client may fix the request and retry with the same key).

    Runs in its caller's key scope; keys made for new people are cached in it before the batch
    commits, so let the scope end with the call (a request, a task) as `data_keys_create_many`
    asks."""
    items, single = _items(payload)
    if idempotency_key is None:
        return _ingest(client, items, single)
    key_hash = _digest(client, b"key", _idempotency_key(idempotency_key).encode())
    body_hash = _digest(client, b"body", raw_body)
    stored = _stored(client, key_hash)
    if stored is not None:
        return _replay(stored, body_hash)
    try:
        with transaction.atomic():
            answer = _ingest(client, items, single)
            IngestionRequest.objects.create(
                client=client,
                key_hash=key_hash,
                body_hash=body_hash,
                status=answer.status,
                response=answer.body,
                expires_at=timezone.now() + timedelta(hours=settings.PARTNERS_IDEMPOTENCY_HOURS),
            )
    except IntegrityError:
        # The same key in a request that committed while this one ran (PostgreSQL makes this
        # one wait for it): this one's events are rolled back, and its answer is given.
        stored = _stored(client, key_hash)
        if stored is None:
            raise
        return _replay(stored, body_hash)
    return answer


def partner_ingestion_requests_purge(*, batch_size: int = 5000) -> int:
    """Delete kept answers past their expiry, a batch at a time. Returns how many."""
    expired = IngestionRequest.objects.filter(expires_at__lte=timezone.now()).values_list("pk", flat=True)
    deleted = 0
    while ids := list(expired[:batch_size]):
        deleted += IngestionRequest.objects.filter(pk__in=ids).delete()[0]
    return deleted


def _items(payload: Any) -> tuple[list[Any], bool]:
    """The events of a request, and whether it was a single event."""
    if not isinstance(payload, dict):
        raise InvalidEvent('Expected a JSON object: one event, or {"events": [...]}.', param="events")
    if "events" not in payload:
        return [payload], True
    if set(payload) != {"events"}:
        raise InvalidEvent("A batch has only the key events.", param=sorted(set(payload) - {"events"})[0])
    events = payload["events"]
    if not isinstance(events, list) or not events:
        raise InvalidEvent("Expected a list of at least one event.", param="events")
    if len(events) > settings.PARTNERS_EVENTS_MAX_BATCH:
        raise TooManyEvents(f"At most {settings.PARTNERS_EVENTS_MAX_BATCH} events in one batch.")
    return events, False


def _ingest(client: PartnerClient, items: list[Any], single: bool) -> IngestionAnswer:
    known_kinds = record_kind_slugs(shape=Shape.EVENT)
    refusals: dict[int, list[tuple[int, ApplicationError]]] = {}
    drafts: dict[int, _Draft] = {}
    for index, item in enumerate(items):
        draft, problems = _read(item, known_kinds)
        if problems:
            refusals[index] = [(400, problem) for problem in problems]
        elif draft is not None and draft.kind not in client.record_kinds:
            refusals[index] = [(403, KindNotGranted())]
        elif draft is not None:
            drafts[index] = draft
    people = subjects_of(client=client, pairwise_ids={draft.person for draft in drafts.values()}) if drafts else {}
    writes, positions = [], []
    for index, draft in drafts.items():
        subject = people.get(draft.person)
        if subject is None:
            refusals[index] = [(404, UnknownPerson())]
            continue
        writes.append(EventWrite(subject, draft.kind, draft.body, draft.occurred_at))
        positions.append(index)
    if writes:
        outcomes = profile_events_write(
            events=writes, source=Source.PARTNER, source_name=client.slug, actor=Actor.partner(client.slug)
        )
        for index, outcome in zip(positions, outcomes, strict=True):
            if isinstance(outcome, ApplicationError):
                refusals[index] = [_refusal(outcome)]
    if single and refusals:
        status, error = refusals[0][0]
        raise InvalidInput([problem for _, problem in refusals[0]]) if status == 400 else error
    if not single and len(refusals) == len(items) and all(s == 400 for found in refusals.values() for s, _ in found):
        raise InvalidInput(
            [
                type(problem)(problem.message, code=problem.code, param=f"events.{index}.{problem.param}")
                for index, found in sorted(refusals.items())
                for _, problem in found
            ]
        )
    listed = [
        {"index": index, "status": status, "code": problem.code, "message": problem.message, "param": problem.param}
        for index, found in sorted(refusals.items())
        for status, problem in found
    ]
    body = {"accepted": len(items) - len(refusals), "refused": len(refusals), "refusals": listed}
    return IngestionAnswer(201 if single else 200, body)


def _refusal(error: ApplicationError) -> tuple[int, ApplicationError]:
    """What the gate's refusal of an item answers: a person who did not consent, restricted
    processing or was erased is `unknown_person`, like one this client does not know."""
    if isinstance(error, AccessDenied | SubjectErased):
        return 404, UnknownPerson()
    if isinstance(error, SourceNotAllowed):
        return 403, KindNotGranted()
    return 400, error


def _read(item: Any, known_kinds: set[str]) -> tuple[_Draft | None, list[ApplicationError]]:
    """One event, read strictly: every problem found, named by the part it blames."""
    if not isinstance(item, dict):
        return None, [InvalidEvent("Expected an event: a JSON object.", param="event")]
    problems: list[ApplicationError] = []
    for key in sorted(set(item) - EVENT_KEYS):
        problems.append(InvalidEvent("Not a part of an event.", code="unknown_key", param=key))
    for key in sorted(EVENT_KEYS - set(item)):
        problems.append(InvalidEvent("This part of an event is required.", code="required", param=key))
    person: Any = item.get("person")
    kind: Any = item.get("kind")
    occurred_at: Any = item.get("occurred_at")
    body: Any = item.get("body")
    if "person" in item and not (isinstance(person, str) and _PERSON.match(person)):
        problems.append(InvalidEvent("A person's id for this client.", param="person"))
    if "kind" in item and not (isinstance(kind, str) and _KIND.match(kind) and kind in known_kinds):
        problems.append(InvalidEvent("No event kind has this slug.", code="unknown_kind", param="kind"))
    when = None
    if "occurred_at" in item:
        when = _moment(occurred_at)
        if when is None:
            problems.append(
                InvalidEvent("An ISO 8601 date and time with its offset, not in the future.", param="occurred_at")
            )
    if "body" in item:
        problems += _body_problems(body)
    if problems:
        return None, problems
    assert when is not None
    return _Draft(person, kind, when, body), []


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None or moment > timezone.now() + MAX_SKEW:
        return None
    return moment


def _body_problems(body: Any) -> list[ApplicationError]:
    if not isinstance(body, dict):
        return [InvalidEvent("An event's body is a JSON object.", code="not_an_object", param="body")]
    if _depth(body, settings.PARTNERS_EVENT_MAX_DEPTH) > settings.PARTNERS_EVENT_MAX_DEPTH:
        message = f"An event's body nests at most {settings.PARTNERS_EVENT_MAX_DEPTH} levels."
        return [InvalidEvent(message, code="too_deep", param="body")]
    size = len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    if size > settings.PARTNERS_EVENT_MAX_BYTES:
        message = f"An event's body is at most {settings.PARTNERS_EVENT_MAX_BYTES} bytes of JSON."
        return [InvalidEvent(message, code="too_large", param="body")]
    return []


def _depth(value: Any, limit: int) -> int:
    """How deeply `value` nests (an object or array is one level), counted no further than
    one past `limit`."""
    if not isinstance(value, dict | list) or limit < 0:
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)


def _idempotency_key(value: str) -> str:
    """The key as sent (a Structured Fields string, `"..."`, or bare)."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not _KEY.match(value):
        raise InvalidIdempotencyKey()
    return value


@functools.lru_cache(maxsize=4)
def _hash_key(root: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"vault-partners-idempotency/1").derive(root)


def _digest(client: PartnerClient, label: bytes, data: bytes) -> str:
    """A keyed hash (under a key derived from the index root), so a kept request body cannot be
    confirmed by guessing it without the key."""
    key = _hash_key(get_provider().index_root_key())
    return hmac.new(key, label + b"\x00" + client.pk.bytes + data, hashlib.sha256).hexdigest()


def _stored(client: PartnerClient, key_hash: str) -> IngestionRequest | None:
    kept = IngestionRequest.objects.filter(client=client, key_hash=key_hash)
    kept.filter(expires_at__lte=timezone.now()).delete()
    return kept.first()


def _replay(stored: IngestionRequest, body_hash: str) -> IngestionAnswer:
    if not hmac.compare_digest(stored.body_hash, body_hash):
        raise IdempotencyKeyReused()
    return IngestionAnswer(stored.status, stored.response, replayed=True)
