"""Real-time triggers (issue 15, target "Trigger"): from a catalog event to the last
`notification.requested` webhook enqueued for 1,000 matching people among 100,000, against
decrypting the preferences of all 100,000 through the gate and matching them in Python (what a
trigger without the preference index would do). Both include the consent filter and the audit
entries; the ratio is the median of alternated runs within one process."""

import random
import statistics
import time
import uuid

from django.db import connection
from django.utils import timezone

from bench.harness import Figure
from consent.models import ConsentState, ConsentStatus, PolicyVersion, Purpose
from partners.models import PartnerClient, PreferenceToken, WebhookDelivery
from partners.secrets import webhook_secret_new, webhook_secret_seal
from partners.services.triggers import (
    MATCH_PURPOSE,
    PREFERENCE_FIELDS,
    PUSH_PURPOSE,
    preference_token,
    preference_tokens,
    trigger_fire,
)
from profiles.gate import Actor, profile_read_many
from profiles.models import PROFILE, FieldDefinition, ProfileValue
from vault import crypto
from vault.crypto import data_keys_create_many
from vault.fields import seal

PEOPLE = 100_000
MATCHING = 1_000
BRAND, SIZE = "Benchmark Runners", "M"
OTHER_BRANDS = ("Veja", "Onitsuka", "Salomon", "Patagonia", "Asics", "Hoka", "Arc'teryx", "Birkenstock", "Nike")
ROUNDS = 3


def _seed() -> tuple[list[uuid.UUID], PartnerClient]:
    """100,000 people with sealed preferences, both consents, and their index entries (computed
    from the same plaintext the gate would release: the index's own function, no decryption)."""
    rng = random.Random(15)  # noqa: S311 (reproducible bench data, not a secret)
    definitions = {d.key: d for d in FieldDefinition.objects.filter(key__in=PREFERENCE_FIELDS)}
    people = [uuid.uuid4() for _ in range(PEOPLE)]
    now = timezone.now()
    for slug in (MATCH_PURPOSE, PUSH_PURPOSE):
        purpose = Purpose.objects.get(slug=slug)
        version = PolicyVersion.objects.filter(purpose=purpose).latest("effective_from")
        ConsentState.objects.bulk_create(
            (
                ConsentState(
                    subject_id=s,
                    purpose=purpose,
                    status=ConsentStatus.GRANTED,
                    policy_version=version,
                    last_seq=1,
                    changed_at=now,
                )
                for s in people
            ),
            batch_size=10_000,
        )
    rows, tokens = [], []
    with crypto.key_scope():
        data_keys_create_many(people, PROFILE)  # one key per person in bulk, cached for the seals
        for n, subject in enumerate(people):
            if n < MATCHING:
                values = {"favorite_brands": f"{BRAND}, Veja", "clothing_size": SIZE, "shoe_size": "42"}
            else:
                values = {
                    "favorite_brands": ", ".join(rng.sample(OTHER_BRANDS, rng.randint(1, 3))),
                    "clothing_size": rng.choice(("XS", "S", "M", "L", "XL")),
                    "shoe_size": str(rng.randint(36, 46)),
                }
            for key, value in values.items():
                row = ProfileValue(
                    id=uuid.uuid4(),
                    subject_id=subject,
                    definition=definitions[key],
                    source="import",
                    legal_basis="consent",
                    collected_at=now,
                    expires_at=now,
                )
                seal(row, "value", value)
                rows.append(row)
            tokens += [PreferenceToken(token=t, subject_id=subject) for t in preference_tokens(values)]
            if len(rows) >= 30_000:
                ProfileValue.objects.bulk_create(rows, batch_size=10_000)
                PreferenceToken.objects.bulk_create(tokens, batch_size=10_000)
                rows, tokens = [], []
    ProfileValue.objects.bulk_create(rows, batch_size=10_000)
    PreferenceToken.objects.bulk_create(tokens, batch_size=10_000)
    PartnerClient.objects.create(
        slug="bench-push",
        name="Push",
        purposes=[PUSH_PURPOSE],
        webhook_url="http://127.0.0.1:9/hooks",
        webhook_secret=webhook_secret_seal(webhook_secret_new()),
    )
    shop = PartnerClient.objects.create(slug="bench-shop", name="Shop", purposes=[MATCH_PURPOSE])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return people, shop


def _scan(people: list[uuid.UUID]) -> int:
    """Without the index: every person's preferences through the gate, matched in Python."""
    wanted = preference_token(brand=BRAND, size=SIZE)
    matched = 0
    with crypto.key_scope():
        for start in range(0, len(people), 10_000):
            found = profile_read_many(
                subject_ids=people[start : start + 10_000],
                fields=PREFERENCE_FIELDS,
                purpose=MATCH_PURPOSE,
                actor=Actor.system("bench-scan"),
            )
            matched += sum(wanted in preference_tokens(values) for values in found.values())
    return matched


def bench_trigger_against_a_full_scan() -> list[Figure]:
    started = time.perf_counter()
    people, shop = _seed()
    seeded = time.perf_counter() - started
    triggers, scans = [], []
    for _ in range(ROUNDS):
        WebhookDelivery.objects.all().delete()
        begin = time.perf_counter()
        result = trigger_fire(client=shop, brand=BRAND, size=SIZE, item="Trail shoe")
        triggers.append(time.perf_counter() - begin)
        assert result.matched == MATCHING, result.matched
        enqueued = sum(len(d.payload["people"]) for d in WebhookDelivery.objects.all())
        assert enqueued == MATCHING, enqueued
        begin = time.perf_counter()
        assert _scan(people) == MATCHING
        scans.append(time.perf_counter() - begin)
    trigger, scan = statistics.median(triggers), statistics.median(scans)
    return [
        Figure("seeding 100,000 people (not a target)", seeded, "s"),
        Figure("trigger: event to last webhook enqueued", trigger * 1000, "ms"),
        Figure("full scan: decrypt 100,000 people's prefs", scan * 1000, "ms"),
        Figure("full scan / trigger (median of 3)", scan / trigger, "x", at_least=20),
    ]
