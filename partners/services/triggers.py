"""Real-time triggers: a client posts a catalog event ("brand X is now available in size M") and
the push client(s) get `notification.requested` webhooks naming the people whose preferences match
and who consented to push notifications, within seconds.

Matching must not decrypt every profile on each event, so the vault keeps a preference index:
one keyed hash per (favourite brand, size) pair a person holds (`PreferenceToken`), computed from
values read through the gate for `personalization` (the purpose those fields serve), and
maintained from the outbox: a `profile.updated` naming a preference field, or a
`consent.changed` of `personalization`, re-reads that person's preferences (or drops their
tokens when the gate no longer releases them). A trigger is then one indexed lookup, two
bulk consent checks and one bulk insert. What the index leaks is in docs/partners.md.
"""

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import batched
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from consent.errors import ConsentError
from consent.selectors import consent_granted_subjects
from partners.models import PartnerClient, PreferenceToken, WebhookDelivery, WebhookEventType
from partners.services.clients import pairwise_ids_for
from profiles.errors import ProfileError
from profiles.gate import Actor, profile_read_many
from vault.audit import audit_record_many
from vault.blind_index import BlindIndex
from vault.models import ErasedSubject

MATCH_PURPOSE = "personalization"  # the preference fields serve it; a trigger needs the client to hold it
PUSH_PURPOSE = "push-notifications"  # whom a notification may go to, and which clients send them
BRAND_FIELD = "favorite_brands"
SIZE_FIELDS = ("shoe_size", "clothing_size")
PREFERENCE_FIELDS = (BRAND_FIELD, *SIZE_FIELDS)
# 64 bits: exact for any realistic number of (brand, size) pairs, so the index needs no
# confirming decryption (which is what keeps triggers fast). docs/partners.md has the trade-off.
PREFERENCE_INDEX = BlindIndex(name="partners.preference/1", kind="text", bits=64)
INDEX_ACTOR = Actor.system("preference-index")
CHUNK = 5000
_BRAND_SEPARATORS = re.compile(r"[,;\n]")


def preference_token(*, brand: str, size: str) -> str:
    """The index entry of one (brand, size) pair (text-normalized: case and spacing do not count)."""
    return PREFERENCE_INDEX.compute(f"{brand.strip()}|{size.strip()}")


def preference_tokens(values: dict[str, Any]) -> set[str]:
    """Every (favourite brand, size) pair of one person's preference values."""
    brands = {b.strip() for b in _BRAND_SEPARATORS.split(str(values.get(BRAND_FIELD) or "")) if b.strip()}
    sizes = {str(values[f]).strip() for f in SIZE_FIELDS if values.get(f)}
    return {preference_token(brand=b, size=s) for b in brands for s in sizes}


def preference_index_refresh(*, subject_ids: Iterable[uuid.UUID]) -> int:
    """Re-read these people's preferences through the gate and replace their index entries;
    people the gate does not release (no `personalization` consent, restricted, erased) lose
    theirs. Returns the number of entries written."""
    subjects = list(dict.fromkeys(subject_ids))
    if not subjects:
        return 0
    written = 0
    for chunk in batched(subjects, CHUNK):
        try:
            found = profile_read_many(
                subject_ids=chunk, fields=PREFERENCE_FIELDS, purpose=MATCH_PURPOSE, actor=INDEX_ACTOR
            )
        except (ProfileError, ConsentError):  # a schema without these fields: nothing to index
            found = {}
        rows = [
            PreferenceToken(token=t, subject_id=s) for s, values in found.items() for t in preference_tokens(values)
        ]
        with transaction.atomic():
            PreferenceToken.objects.filter(subject_id__in=chunk).delete()
            PreferenceToken.objects.bulk_create(rows, ignore_conflicts=True)
        written += len(rows)
    return written


@dataclass(frozen=True)
class TriggerResult:
    trigger: uuid.UUID
    matched: int
    deliveries: list[uuid.UUID]


def push_clients() -> list[PartnerClient]:
    """The clients that send push notifications: active, holding the purpose, with an endpoint."""
    candidates = PartnerClient.objects.filter(is_active=True, webhook_secret__isnull=False).exclude(webhook_url="")
    return [client for client in candidates if PUSH_PURPOSE in client.purposes]


def trigger_matches(*, brand: str, size: str) -> list[uuid.UUID]:
    """The people whose preferences hold (brand, size) and who consent, now, both to their
    preferences being used (`personalization`) and to push notifications; erased people never.
    An index lookup and bulk consent checks: nobody is decrypted."""
    candidates = list(
        PreferenceToken.objects.filter(token=preference_token(brand=brand, size=size))
        .order_by("subject_id")
        .values_list("subject_id", flat=True)
    )
    matched: list[uuid.UUID] = []
    for chunk in batched(candidates, CHUNK):
        allowed = consent_granted_subjects(subject_ids=chunk, purpose=PUSH_PURPOSE)
        allowed &= consent_granted_subjects(subject_ids=allowed, purpose=MATCH_PURPOSE) if allowed else set()
        allowed -= set(ErasedSubject.objects.filter(subject_id__in=allowed).values_list("subject_id", flat=True))
        matched += [s for s in chunk if s in allowed]
    return matched


def trigger_fire(*, client: PartnerClient, brand: str, size: str, item: str = "") -> TriggerResult:
    """Match a catalog event and enqueue `notification.requested` webhooks to every push client,
    in batches of `PARTNERS_TRIGGER_BATCH` people (the push client's pairwise ids). The people
    matched are audited (one entry each, naming the fields matched on, never their values)."""
    trigger = uuid.uuid4()
    matched = trigger_matches(brand=brand, size=size)
    catalog = {"brand": brand, "size": size, "item": item}
    now = timezone.now()
    rows = []
    with transaction.atomic():
        if matched:
            audit_record_many(
                **Actor.partner(client.slug).audit(),
                action="partners.trigger_match",
                purpose=PUSH_PURPOSE,
                fields=list(PREFERENCE_FIELDS),
                subject_ids=matched,
            )
            for receiver in push_clients():
                ids = pairwise_ids_for(client=receiver, subject_ids=matched)
                for batch in batched(matched, settings.PARTNERS_TRIGGER_BATCH):
                    data = {"trigger": str(trigger), "catalog": catalog, "people": [ids[s] for s in batch]}
                    rows.append(
                        WebhookDelivery(
                            client=receiver,
                            event_id=uuid.uuid4(),
                            event_type=WebhookEventType.NOTIFICATION_REQUESTED,
                            payload=data,
                            next_attempt_at=now,
                        )
                    )
            WebhookDelivery.objects.bulk_create(rows)
    return TriggerResult(trigger=trigger, matched=len(matched), deliveries=[row.id for row in rows])
