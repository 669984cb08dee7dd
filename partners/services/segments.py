"""Segments: a client's audience definitions, and their members computed inside the vault.

A definition is `{"all": [condition, ...]}` (every condition holds) or `{"any": [...]}` (one
does), of at most `MAX_CONDITIONS` conditions:

- `{"field": "country", "op": "eq", "value": "NL"}`, `{"field": "clothing_size", "op": "in",
  "values": ["M", "L"]}`: a profile field's value (compared case-insensitively; a multiple-choice
  value matches if it holds the value);
- `{"consent": "email-marketing"}`: the person consents to another of the client's purposes;
- `{"category": "preference"}`: the person holds a value in a field of that category (among the
  client's fields that serve the segment's purpose);
- `{"event": "order", "within_days": 30, "match": {"brand": "Onitsuka"}}`: an event of that kind
  in the last N days whose body matches every key (a dotted path; lists match if any item does).

A definition may use only the client's fields (never a special-category one) that serve the
segment's purpose, the client's purposes, and event kinds collected for the segment's purpose:
what the gate would release to the client anyway. Everyone examined must consent to the
segment's purpose (the gate filters) and must not have restricted processing.

Members are computed by a Celery job (`partners.segment_compute`) in bounded batches: each batch
reads the fields and events the definition needs through the gate in bulk (one audit entry per
person decrypted, under the client's name and the segment's purpose), evaluates the definition
in memory, and stores the members as the client's pairwise ids, with an expiry. DESIGN.md's
preference over deterministic indexes: nothing about a value is kept outside the ciphertext, and
what a membership reveals is discussed in docs/partners.md.
"""

import re
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Min, QuerySet
from django.utils import timezone

from consent.models import LegalBasis, Purpose
from consent.selectors import consent_grant_holders, consent_granted_subjects
from partners.errors import FieldsNotGranted, InvalidDefinition, PurposeNotGranted
from partners.models import PairwiseId, PartnerClient, Segment, SegmentMember, SegmentStatus
from partners.services.clients import pairwise_ids_for
from profiles.gate import Actor, profile_events_read_many, profile_read_many
from profiles.models import FieldDefinition, FieldType, RecordKind
from profiles.selectors import profile_holders, profile_restricted_among, unscoped_field_definitions

MAX_CONDITIONS = 20
MAX_VALUES = 100
MAX_DAYS = 730
MAX_MATCH_KEYS = 10
MAX_TEXT = 300
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,3}$")
_NOT_COMPARABLE = {FieldType.JSON}
SCALAR = str | int | float | bool


def _purpose_basis(slug: str) -> str:
    basis = Purpose.objects.filter(slug=slug).values_list("legal_basis", flat=True).first()
    if basis is None:
        raise PurposeNotGranted(param="purpose")
    return str(basis)


def _scalar(value: Any, param: str) -> SCALAR:
    if isinstance(value, bool | int | float) or (isinstance(value, str) and 0 < len(value) <= MAX_TEXT):
        return value
    raise InvalidDefinition(f"A value is a number, true/false, or text of 1 to {MAX_TEXT} characters.", param=param)


def _field_condition(
    condition: dict[str, Any], param: str, client: PartnerClient, purpose: str, fields: dict[str, FieldDefinition]
) -> dict[str, Any]:
    key = condition.get("field")
    op = condition.get("op")
    if not isinstance(key, str) or key not in client.fields:
        raise FieldsNotGranted("This client may not read this field.", param=f"{param}.field")
    definition = fields.get(key)
    if definition is None:
        raise InvalidDefinition("This field is deprecated.", param=f"{param}.field")
    if definition.is_special_category or definition.field_type in _NOT_COMPARABLE:
        raise FieldsNotGranted(f"The field {key} may not be used in a segment.", param=f"{param}.field")
    if purpose not in {p.slug for p in definition.purposes.all()}:
        raise FieldsNotGranted(f"The field {key} does not serve the segment's purpose.", param=f"{param}.field")
    if op == "eq":
        _only(condition, {"field", "op", "value"}, param)
        values = [_scalar(condition.get("value"), f"{param}.value")]
    elif op == "in":
        _only(condition, {"field", "op", "values"}, param)
        raw = condition.get("values")
        if not isinstance(raw, list) or not 0 < len(raw) <= MAX_VALUES:
            raise InvalidDefinition(f"values is a list of 1 to {MAX_VALUES} values.", param=f"{param}.values")
        values = [_scalar(v, f"{param}.values.{n}") for n, v in enumerate(raw)]
    else:
        raise InvalidDefinition('op is "eq" or "in".', param=f"{param}.op")
    if definition.choices:
        allowed = {_norm(c) for c in definition.choices}
        for n, value in enumerate(values):
            if _norm(value) not in allowed:
                at = f"{param}.value" if op == "eq" else f"{param}.values.{n}"
                raise InvalidDefinition("Not one of the field's choices.", param=at)
    return {"field": key, "op": op, **({"value": values[0]} if op == "eq" else {"values": values})}


def _only(condition: dict[str, Any], keys: set[str], param: str) -> None:
    if extra := sorted(set(condition) - keys):
        raise InvalidDefinition("Not a part of this kind of condition.", param=f"{param}.{extra[0]!s:.64}")


def _event_condition(condition: dict[str, Any], param: str, purpose: str) -> dict[str, Any]:
    _only(condition, {"event", "within_days", "match"}, param)
    slug = condition["event"]
    kind = None
    if isinstance(slug, str):
        kind = RecordKind.objects.select_related("purpose").filter(slug=slug, shape=RecordKind.Shape.EVENT).first()
    if kind is None:
        raise InvalidDefinition("No such kind of event.", param=f"{param}.event")
    if kind.purpose.slug != purpose:
        raise PurposeNotGranted(
            "Events of this kind are not collected for the segment's purpose.", param=f"{param}.event"
        )
    days = condition.get("within_days")
    if type(days) is not int or not 1 <= days <= MAX_DAYS:
        raise InvalidDefinition(f"within_days is a whole number from 1 to {MAX_DAYS}.", param=f"{param}.within_days")
    match = condition.get("match", {})
    if not isinstance(match, dict) or len(match) > MAX_MATCH_KEYS:
        raise InvalidDefinition(f"match is an object of at most {MAX_MATCH_KEYS} keys.", param=f"{param}.match")
    for path, value in match.items():
        if not _PATH.match(path):
            raise InvalidDefinition("A key is a name or a dotted path of names.", param=f"{param}.match")
        _scalar(value, f"{param}.match.{path}")
    return {"event": slug, "within_days": days, "match": match}


def segment_definition_clean(*, client: PartnerClient, purpose: str, definition: Any) -> dict[str, Any]:
    """The definition as stored, or the error naming its bad part (`definition.all.2.field`):
    400 for a malformed one, 403 for a field, purpose or kind the client may not use."""
    if purpose not in client.purposes:
        raise PurposeNotGranted(param="purpose")
    if not isinstance(definition, dict) or len(definition) != 1 or next(iter(definition)) not in ("all", "any"):
        raise InvalidDefinition('A definition is {"all": [...]} or {"any": [...]}.', param="definition")
    ((mode, conditions),) = definition.items()
    base = f"definition.{mode}"
    if not isinstance(conditions, list) or not 0 < len(conditions) <= MAX_CONDITIONS:
        raise InvalidDefinition(f"Between 1 and {MAX_CONDITIONS} conditions.", param=base)
    fields = {d.key: d for d in unscoped_field_definitions().filter(key__in=client.fields, deprecated_at=None)}
    cleaned = []
    for n, condition in enumerate(conditions):
        param = f"{base}.{n}"
        if not isinstance(condition, dict):
            raise InvalidDefinition("A condition is an object.", param=param)
        if "field" in condition:
            cleaned.append(_field_condition(condition, param, client, purpose, fields))
        elif "consent" in condition:
            _only(condition, {"consent"}, param)
            if condition["consent"] not in client.purposes:
                raise PurposeNotGranted(param=f"{param}.consent")
            cleaned.append({"consent": condition["consent"]})
        elif "category" in condition:
            _only(condition, {"category"}, param)
            keys = _category_fields(fields, str(condition["category"]), purpose)
            if not keys:
                raise FieldsNotGranted(
                    "No field of this category in the client's scope serves the segment's purpose.",
                    param=f"{param}.category",
                )
            cleaned.append({"category": condition["category"]})
        elif "event" in condition:
            cleaned.append(_event_condition(condition, param, purpose))
        else:
            raise InvalidDefinition("A condition names a field, consent, category or event.", param=param)
    return {mode: cleaned}


def _category_fields(fields: dict[str, FieldDefinition], category: str, purpose: str) -> list[str]:
    return sorted(
        key
        for key, d in fields.items()
        if d.category == category and not d.is_special_category and purpose in {p.slug for p in d.purposes.all()}
    )


def _audit_name(client: PartnerClient) -> Actor:
    return Actor.partner(client.slug)


def segment_create(*, client: PartnerClient, name: str, purpose: str, definition: Any) -> Segment:
    """A new segment, its definition checked, and its first computation enqueued."""
    cleaned = segment_definition_clean(client=client, purpose=purpose, definition=definition)
    if not isinstance(name, str) or not 0 < len(name.strip()) <= 120:
        raise InvalidDefinition("A name of 1 to 120 characters.", param="name")
    with transaction.atomic():
        segment = Segment.objects.create(client=client, name=name.strip(), purpose=purpose, definition=cleaned)
        _enqueue(segment)
    return segment


def segment_refresh(*, segment: Segment) -> Segment:
    """Compute the members anew: the definition is checked again against the client's current
    scope (a field or purpose taken away refuses the refresh), and a new run supersedes any
    in progress. The members standing stay exportable until the new ones are ready."""
    segment_definition_clean(client=segment.client, purpose=segment.purpose, definition=segment.definition)
    with transaction.atomic():
        Segment.objects.filter(pk=segment.pk).update(
            run=uuid.uuid4(), status=SegmentStatus.PENDING, cursor=None, examined=0, matched=0, error=""
        )
        segment.refresh_from_db()
        _enqueue(segment)
    return segment


def segment_delete(*, segment: Segment) -> None:
    """The segment and its members, at once (a job still running finds no row and stops)."""
    segment.delete()


def _enqueue(segment: Segment) -> None:
    from partners.tasks import segment_compute  # the tasks call these services

    segment.total = _candidates(segment).count()
    segment.save(update_fields=["total", "updated_at"])
    segment_id, run = str(segment.pk), str(segment.run)
    transaction.on_commit(lambda: segment_compute.delay(segment_id, run))


def _candidates(segment: Segment) -> QuerySet[Any, uuid.UUID]:
    """Who may be a member, in id order: those who granted a consent-based purpose (confirmed
    batch by batch), or everyone holding a profile for a purpose that needs no consent."""
    if _purpose_basis(segment.purpose) == LegalBasis.CONSENT:
        return consent_grant_holders(purpose=segment.purpose)
    return profile_holders()


def segment_compute(*, segment_id: uuid.UUID, run: uuid.UUID, max_batches: int | None = None) -> bool:
    """Run up to `max_batches` batches of the computation `run`; True once it is over (finished,
    failed, superseded by a refresh, or the segment deleted). Each batch locks the segment row,
    so two workers given the same run never examine the same people twice."""
    done = 0
    while max_batches is None or done < max_batches:
        if _compute_batch(segment_id, run):
            return True
        done += 1
    return False


def _compute_batch(segment_id: uuid.UUID, run: uuid.UUID) -> bool:
    from vault.errors import ApplicationError

    with transaction.atomic():
        segment = Segment.objects.select_for_update().select_related("client").filter(pk=segment_id).first()
        if (
            segment is None
            or segment.run != run
            or segment.status not in (SegmentStatus.PENDING, SegmentStatus.RUNNING)
        ):
            return True
        segment.status = SegmentStatus.RUNNING
        candidates = _candidates(segment)
        if segment.cursor is not None:
            candidates = candidates.filter(subject_id__gt=segment.cursor)
        page = list(candidates[: settings.PARTNERS_SEGMENT_BATCH])
        if not page:
            _finish(segment)
            return True
        try:
            with transaction.atomic():
                members = segment_members_evaluate(segment=segment, subject_ids=page)
        except ApplicationError as error:  # the schema or a purpose changed under the definition
            segment.status, segment.error = SegmentStatus.FAILED, error.code[:64]
            segment.save(update_fields=["status", "error", "updated_at"])
            return True
        if members:
            ids = pairwise_ids_for(client=segment.client, subject_ids=members)
            people = PairwiseId.objects.filter(client=segment.client, pairwise__in=list(ids.values()))
            expires = timezone.now() + timedelta(hours=settings.PARTNERS_SEGMENT_TTL_HOURS)
            SegmentMember.objects.bulk_create(
                [
                    SegmentMember(segment=segment, generation=run, person_id=pk, expires_at=expires)
                    for pk in people.values_list("pk", flat=True)
                ],
                ignore_conflicts=True,
                batch_size=5000,
            )
        segment.cursor = page[-1]
        segment.examined += len(page)
        segment.matched += len(members)
        segment.save(update_fields=["status", "cursor", "examined", "matched", "updated_at"])
    return False


def _finish(segment: Segment) -> None:
    mine = SegmentMember.objects.filter(segment=segment, generation=segment.run)
    SegmentMember.objects.filter(segment=segment).exclude(generation=segment.run).delete()
    earliest = mine.aggregate(first=Min("expires_at"))["first"]
    now = timezone.now()
    segment.generation = segment.run
    segment.count = mine.count()
    segment.computed_at = now
    segment.expires_at = earliest or now + timedelta(hours=settings.PARTNERS_SEGMENT_TTL_HOURS)
    segment.total = max(segment.total, segment.examined)
    segment.status = SegmentStatus.READY
    segment.save()


def _norm(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().casefold()


def _holds(held: Any, wanted: set[str]) -> bool:
    if isinstance(held, list):
        return any(_norm(item) in wanted for item in held)
    return _norm(held) in wanted


def _at(body: Any, path: list[str]) -> list[Any]:
    """The values at a dotted path of a body; a list on the way is searched item by item."""
    if isinstance(body, list):
        return [found for item in body for found in _at(item, path)]
    if not path:
        return [body]
    if not isinstance(body, dict) or path[0] not in body:
        return []
    return _at(body[path[0]], path[1:])


def segment_members_evaluate(*, segment: Segment, subject_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Which of these people the segment's definition holds for, read through the gate in bulk
    (for the segment's purpose, as its client): only people who consent to the purpose and have
    not restricted processing."""
    client = segment.client
    actor = _audit_name(client)
    ((mode, conditions),) = segment.definition.items()
    people = consent_granted_subjects(subject_ids=subject_ids, purpose=segment.purpose)
    people -= profile_restricted_among(subject_ids=list(people))
    if not people:
        return []
    wanted_fields: set[str] = set()
    fields = {d.key: d for d in unscoped_field_definitions().filter(key__in=client.fields, deprecated_at=None)}
    category_keys: dict[str, list[str]] = {}
    kinds: set[str] = set()
    days = 0
    for condition in conditions:
        if "field" in condition:
            wanted_fields.add(condition["field"])
        elif "category" in condition:
            keys = category_keys[condition["category"]] = _category_fields(
                fields, condition["category"], segment.purpose
            )
            wanted_fields.update(keys)
        elif "event" in condition:
            kinds.add(condition["event"])
            days = max(days, condition["within_days"])
    values = (
        profile_read_many(subject_ids=people, fields=sorted(wanted_fields), purpose=segment.purpose, actor=actor)
        if wanted_fields
        else {}
    )
    now = timezone.now()
    events = (
        profile_events_read_many(
            subject_ids=people, purpose=segment.purpose, actor=actor, kinds=kinds, since=now - timedelta(days=days)
        )
        if kinds
        else {}
    )
    consents = {
        c["consent"]: consent_granted_subjects(subject_ids=people, purpose=c["consent"])
        for c in conditions
        if "consent" in c
    }
    tests: list[Callable[[uuid.UUID], bool]] = []
    for condition in conditions:
        tests.append(_test(condition, values, events, consents, category_keys, now))
    combine: Callable[[Iterable[bool]], bool] = all if mode == "all" else any
    return [s for s in sorted(people) if combine(test(s) for test in tests)]


def _test(
    condition: dict[str, Any],
    values: dict[uuid.UUID, dict[str, Any]],
    events: dict[uuid.UUID, list[Any]],
    consents: dict[str, set[uuid.UUID]],
    category_keys: dict[str, list[str]],
    now: Any,
) -> Callable[[uuid.UUID], bool]:
    if "field" in condition:
        key = condition["field"]
        wanted = {_norm(v) for v in ([condition["value"]] if condition["op"] == "eq" else condition["values"])}
        return lambda s: key in values.get(s, {}) and _holds(values[s][key], wanted)
    if "consent" in condition:
        granted = consents[condition["consent"]]
        return lambda s: s in granted
    if "category" in condition:
        keys = category_keys[condition["category"]]
        return lambda s: any(values.get(s, {}).get(k) not in (None, "", []) for k in keys)
    kind, since = condition["event"], now - timedelta(days=condition["within_days"])
    match = [(path.split("."), _norm(value)) for path, value in condition["match"].items()]

    def event_test(s: uuid.UUID) -> bool:
        return any(
            record.kind == kind
            and record.occurred_at >= since
            and all(_holds(_at(record.body, path), {value}) for path, value in match)
            for record in events.get(s, ())
        )

    return event_test


def segment_members_expire() -> int:
    """Delete the members past their expiry (periodic); returns how many."""
    deleted, _ = SegmentMember.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
