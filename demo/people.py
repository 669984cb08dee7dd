"""Realistic demo people for `manage.py seed_demo --people N` and the benchmarks.

People are profile-only subjects (random UUIDs, no login), as a brand's imported customers are:
no account row, so nothing about them is in plaintext anywhere. Each gets values across the
default schema's categories, consents in a plausible mix (imported, so a purpose that needs a
double opt-in is never granted), and, only where the matching purpose is granted, a social
profile, orders, returns, loyalty points and behavioral events. Everything personal is sealed
under the person's keys before it is inserted.

Written for 100,000 people in a few minutes: generation is separate from writing, and each
batch is one transaction that makes its data keys in bulk, seals its rows inside one key scope
(no key query per value), inserts them in bulk (COPY on PostgreSQL), imports the consents in
bulk, and writes one audit entry per person and kind of import.
"""

import datetime
import operator
import random
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone
from faker import Faker

from consent.models import NO_CHOICE_BASES, LegalBasis, Purpose
from consent.selectors import consent_granted_subjects
from consent.services import age_in_years, consent_import_many, digital_consent_age
from profiles.errors import ProfileError
from profiles.gate import ACCOUNT_PURPOSE, Actor, profile_write, value_index
from profiles.models import (
    EVENTS,
    PROFILE,
    FieldDefinition,
    ProfileDocument,
    ProfileEvent,
    ProfileValue,
    RecordKind,
    Source,
)
from profiles.types import value_clean
from vault import crypto
from vault.audit import audit_record_many
from vault.fields import SealedField, seal

ACTOR = "seed_demo"
PARTNER_NAME = "demo-shop"  # the partner client behavioral events come from
IMPORT_NAME = "seed_demo"

# Country: (Faker locale, language, calling code, mobile prefixes, digits after the prefix).
COUNTRIES: dict[str, tuple[str, str, str, tuple[str, ...], int]] = {
    "DE": ("de_DE", "de", "49", ("151", "160", "170", "176"), 8),
    "FR": ("fr_FR", "fr", "33", ("6", "7"), 8),
    "NL": ("nl_NL", "nl", "31", ("6",), 8),
    "ES": ("es_ES", "es", "34", ("6",), 8),
    "IT": ("it_IT", "it", "39", ("320", "333", "347", "380"), 7),
    "GB": ("en_GB", "en", "44", ("7",), 9),
    "PL": ("pl_PL", "pl", "48", ("5", "6", "7", "8"), 8),
    "PT": ("pt_PT", "pt", "351", ("91", "93", "96"), 7),
    "BE": ("nl_BE", "nl", "32", ("47", "48", "49"), 7),
    "AT": ("de_AT", "de", "43", ("664", "676", "699"), 7),
    "IE": ("en_IE", "en", "353", ("83", "85", "87"), 7),
}
COUNTRY_WEIGHTS = (22, 16, 10, 11, 11, 14, 6, 3, 3, 2, 2)

# Purpose: share of adults who granted it, and of those the share who later withdrew.
CONSENT_MIX: dict[str, tuple[float, float]] = {
    "personalization": (0.60, 0.06),
    "analytics": (0.40, 0.08),
    "email-marketing": (0.30, 0.05),  # needs a double opt-in: an import never grants it
    "loyalty-programme": (0.35, 0.04),
    "push-notifications": (0.20, 0.10),
    "advertising-partners": (0.15, 0.15),
}

# Each field is stored under the first of these purposes that it serves and the person allows
# (a contract purpose always): without a basis, a value is not kept at all.
FIELD_PURPOSES: dict[str, tuple[str, ...]] = {
    "given_name": (ACCOUNT_PURPOSE,),
    "family_name": (ACCOUNT_PURPOSE,),
    "email": (ACCOUNT_PURPOSE,),
    "phone": (ACCOUNT_PURPOSE,),
    "birth_date": (ACCOUNT_PURPOSE,),
    "country": (ACCOUNT_PURPOSE,),
    "preferred_language": (ACCOUNT_PURPOSE,),
    "city": ("personalization", "analytics"),
    "postal_code": ("personalization",),
    "shoe_size": ("personalization",),
    "clothing_size": ("personalization",),
    "favorite_brands": ("personalization",),
    "interests": ("personalization",),
    "social_profile_url": ("personalization",),
    "loyalty_tier": ("loyalty-programme",),
    "lifetime_value": ("loyalty-programme", "analytics"),
    "last_seen_channel": ("analytics",),
}

BRANDS = ("Veja", "Onitsuka", "Salomon", "Patagonia", "Asics", "Hoka", "Arc'teryx", "Birkenstock", "Adidas", "Nike")
PRODUCTS = ("running shoe", "trail shoe", "sneaker", "rain jacket", "fleece", "T-shirt", "shorts", "sandal")
INTERESTS = ("running", "outdoor", "fashion", "football", "yoga", "cycling", "tennis", "basketball")
SOCIAL_PROVIDERS = ("google", "facebook", "apple")
POOL_SIZE = 400  # of each kind of name per country: plenty of variety, a fraction of the cost


@dataclass
class DemoPerson:
    """One generated person: what gets sealed, and the choices that decide what may be kept."""

    subject_id: uuid.UUID
    country: str
    age: int
    values: dict[str, Any]
    street: str
    grants: list[str]
    withdrawals: list[str]
    social: dict[str, Any] | None = None  # the social provider's profile document
    events: list[tuple[str, datetime.datetime, dict[str, Any]]] = field(default_factory=list)


@dataclass
class DemoRun:
    """What a run made: the people's ids and how many rows of each kind."""

    subject_ids: list[uuid.UUID] = field(default_factory=list)
    values: int = 0
    documents: int = 0
    events: int = 0
    consent_events: int = 0


class _Pools:
    """Names, places and sentences per country, drawn from Faker once."""

    def __init__(self, rng: random.Random):
        self.by_country: dict[str, dict[str, list[str]]] = {}
        for country, (locale, *_) in COUNTRIES.items():
            fake = Faker(locale)
            fake.seed_instance(rng.getrandbits(32))
            draw: dict[str, Callable[[], str]] = {
                "given_name": fake.first_name,
                "family_name": fake.last_name,
                "city": fake.city,
                "postal_code": fake.postcode,
                "street": fake.street_address,
                "sentence": fake.sentence,
            }
            self.by_country[country] = {name: [make() for _ in range(POOL_SIZE)] for name, make in draw.items()}

    def pick(self, rng: random.Random, country: str, name: str) -> str:
        return rng.choice(self.by_country[country][name])


def _ascii(text: str) -> str:
    """An e-mail local part from a name: accents dropped, letters only."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum()) or "customer"


def _birth_date(rng: random.Random, today: datetime.date, age: int) -> datetime.date:
    try:
        latest = today.replace(year=today.year - age)
    except ValueError:  # 29 February
        latest = today.replace(year=today.year - age, day=28)
    return latest - datetime.timedelta(days=rng.randrange(365))


class _Generator:
    """Makes people; every random choice comes from one seeded `random.Random`."""

    def __init__(self, seed: int | None, consent_age: Callable[[str, str], int]):
        self.rng = random.Random(seed)  # noqa: S311 (demo data, not secrets)
        self.pools = _Pools(self.rng)
        self.consent_age = consent_age
        self.today = timezone.localdate()
        self.now = timezone.now()
        self.catalog = [
            (f"SKU-{i:04d}", f"{brand} {product}", Decimal(self.rng.randrange(1990, 18990)) / 100)
            for i, (brand, product) in enumerate((b, p) for b in BRANDS for p in PRODUCTS)
        ]

    def person(self) -> DemoPerson:
        rng, pick = self.rng, self.pools.pick
        country = rng.choices(list(COUNTRIES), COUNTRY_WEIGHTS)[0]
        _, language, calling_code, prefixes, digits = COUNTRIES[country]
        roll = rng.random()
        age = rng.randint(13, 15) if roll < 0.02 else rng.randint(16, 17) if roll < 0.05 else _adult_age(rng)
        born = _birth_date(rng, self.today, age)
        given, family = pick(rng, country, "given_name"), pick(rng, country, "family_name")
        number = rng.choice(prefixes) + "".join(str(rng.randrange(10)) for _ in range(digits))
        values: dict[str, Any] = {
            "given_name": given,
            "family_name": family,
            "email": f"{_ascii(given)}.{_ascii(family)}{rng.randrange(1, 999)}@example.com",
            "phone": f"+{calling_code} {number}",
            "birth_date": born,
            "country": country,
            "preferred_language": language if rng.random() < 0.85 else "en",
            "city": pick(rng, country, "city"),
            "postal_code": pick(rng, country, "postal_code"),
            "shoe_size": str(rng.randint(36, 46)),
            "clothing_size": rng.choice(("XS", "S", "M", "M", "L", "L", "XL", "XXL")),
            "favorite_brands": ", ".join(rng.sample(BRANDS, rng.randint(1, 3))),
            "interests": rng.sample(INTERESTS, rng.randint(1, 3)),
            "last_seen_channel": rng.choice(("web", "web", "app", "store", "email")),
        }
        grants, withdrawals = [], []
        for purpose, (share, quits) in CONSENT_MIX.items():
            if age >= self.consent_age(purpose, country) and rng.random() < share:
                grants.append(purpose)
                if rng.random() < quits:
                    withdrawals.append(purpose)
        person = DemoPerson(
            uuid.uuid4(),
            country,
            age_in_years(born, self.today),
            values,
            pick(rng, country, "street"),
            grants,
            withdrawals,
        )
        granted = set(grants) - set(withdrawals)
        if "personalization" in granted and rng.random() < 0.3:
            provider = rng.choice(SOCIAL_PROVIDERS)
            handle = f"{_ascii(given)}{_ascii(family)}{rng.randrange(100)}"
            values["social_profile_url"] = f"https://social.example/{provider}/{handle}"
            person.social = {
                "provider": provider,
                "name": f"{given} {family}",
                "locale": f"{language}-{country}",
                "hometown": values["city"],
                "followers": rng.randrange(20, 2000),
                "verified_email": rng.random() < 0.8,
            }
        self._events(person)
        return person

    def _events(self, person: DemoPerson) -> None:
        """Orders, returns and points over the past year, behavior over the past months. Made
        whatever the person granted: the writer keeps only what their consent allows."""
        rng, now = self.rng, self.now
        spent = Decimal(0)
        for _ in range(_count(rng, 2.0)):
            when = now - datetime.timedelta(minutes=rng.randrange(60, 360 * 24 * 60))
            bought = [(product, rng.randint(1, 2)) for product in rng.sample(self.catalog, rng.randint(1, 3))]
            items: list[dict[str, Any]] = [
                {"sku": sku, "name": name, "price": str(price), "quantity": quantity}
                for (sku, name, price), quantity in bought
            ]
            total = sum((price * quantity for (_, _, price), quantity in bought), Decimal(0))
            spent += total
            order_id = f"D-{rng.randrange(10**9):09d}"
            person.events.append(
                (
                    "order",
                    when,
                    {
                        "order_id": order_id,
                        "items": items,
                        "total": str(total),
                        "currency": "GBP" if person.country == "GB" else "EUR",
                        "channel": rng.choice(("web", "app", "store")),
                        "ship_to": {
                            "street": person.street,
                            "postal_code": person.values["postal_code"],
                            "city": person.values["city"],
                            "country": person.country,
                        },
                    },
                )
            )
            person.events.append(("loyalty_points", when, {"points": int(total), "reason": "order", "order": order_id}))
            if rng.random() < 0.15:
                returned = rng.choice(items)
                reason = rng.choice(("too small", "too large", "not as pictured", "changed my mind"))
                later = when + datetime.timedelta(days=rng.randint(2, 20))
                person.events.append(
                    ("return", min(later, now), {"order": order_id, "sku": returned["sku"], "reason": reason})
                )
            if rng.random() < 0.2:
                sku, name, _ = rng.choice(self.catalog)
                review = {
                    "sku": sku,
                    "rating": rng.choice((2, 3, 4, 4, 5, 5)),
                    "text": self.pools.pick(rng, person.country, "sentence"),
                }
                later = when + datetime.timedelta(days=rng.randint(3, 30))
                person.events.append(("review", min(later, now), review))
        person.values["lifetime_value"] = spent.quantize(Decimal("0.01"))
        person.values["loyalty_tier"] = (
            "platinum" if spent > 1500 else "gold" if spent > 700 else "silver" if spent > 250 else "bronze"
        )
        for _ in range(_count(rng, 6.0)):
            when = now - datetime.timedelta(minutes=rng.randrange(1, 150 * 24 * 60))
            path = rng.choice(("/", "/c/running", "/c/outdoor", "/c/sale", "/stores", "/help/returns"))
            referrer = rng.choice(("direct", "search", "newsletter", "social", "ad"))
            person.events.append(("page_view", when, {"path": path, "referrer": referrer}))
        for _ in range(_count(rng, 4.0)):
            sku, name, _ = rng.choice(self.catalog)
            when = now - datetime.timedelta(minutes=rng.randrange(1, 150 * 24 * 60))
            source = rng.choice(("search", "recommendation", "category"))
            person.events.append(("product_view", when, {"sku": sku, "name": name, "source": source}))
        for _ in range(_count(rng, 3.0)):
            when = now - datetime.timedelta(minutes=rng.randrange(1, 300 * 24 * 60))
            action = rng.choice(("delivered", "opened", "opened", "clicked"))
            person.events.append(
                ("email_engagement", when, {"campaign": f"C-{rng.randrange(1, 60):03d}", "action": action})
            )


def _adult_age(rng: random.Random) -> int:
    return int(rng.triangular(18, 85, 34))


def _count(rng: random.Random, mean: float) -> int:
    """A small non-negative count around `mean` (geometric: many people do little)."""
    count = 0
    while rng.random() < mean / (mean + 1):
        count += 1
    return count


@dataclass(frozen=True)
class _Schema:
    """What the database's schema allows, looked up once: fields by key, the purposes each field
    may be kept under (of `FIELD_PURPOSES`, those it serves), kinds and purposes by slug."""

    fields: dict[str, FieldDefinition]
    bases: dict[str, tuple[str, ...]]
    kinds: dict[str, RecordKind]
    purposes: dict[str, Purpose]

    @classmethod
    def load(cls) -> "_Schema":
        definitions = FieldDefinition.objects.filter(deprecated_at__isnull=True).prefetch_related("purposes")
        fields = {d.key: d for d in definitions}
        serves = {key: {p.slug for p in d.purposes.all()} for key, d in fields.items()}
        return cls(
            fields=fields,
            bases={key: tuple(p for p in FIELD_PURPOSES.get(key, ()) if p in serves[key]) for key in fields},
            kinds={k.slug: k for k in RecordKind.objects.select_related("purpose")},
            purposes={p.slug: p for p in Purpose.objects.all()},
        )

    def importable(self) -> set[str]:
        """Purposes an import may grant: consent-based, and no double opt-in to prove."""
        return {
            slug
            for slug, p in self.purposes.items()
            if p.legal_basis not in NO_CHOICE_BASES
            and not p.requires_double_opt_in
            and p.versions.filter(effective_from__lte=timezone.now()).exists()
        }


def _source(allowed: list[str], preferred: Iterable[str]) -> str | None:
    return next((source for source in preferred if source in allowed), None)


def demo_people_create(
    *,
    count: int,
    seed: int | None = None,
    batch_size: int = 5000,
    progress: Callable[[int, int], None] | None = None,
    on_person: Callable[[DemoPerson], None] | None = None,
) -> DemoRun:
    """Create `count` demo people, `batch_size` per transaction; `progress(done, count)` is
    called after each batch, `on_person` with each person generated (the plaintext, for tests:
    it is never stored as such). The same `seed` makes the same people (with new ids)."""
    if count < 0 or batch_size < 1:
        raise ValueError("count must not be negative, and batch_size must be at least 1.")
    schema = _Schema.load()
    importable = schema.importable()
    ages: dict[tuple[str, str], int] = {}

    def consent_age(purpose: str, country: str) -> int:
        if purpose not in importable:
            return 10**6  # never granted by this import
        if (purpose, country) not in ages:
            ages[purpose, country] = digital_consent_age(schema.purposes[purpose], country)
        return ages[purpose, country]

    generator = _Generator(seed, consent_age)
    run = DemoRun()
    done = 0
    while done < count:
        people = [generator.person() for _ in range(min(batch_size, count - done))]
        if on_person is not None:
            for person in people:
                on_person(person)
        _write_batch(people, schema, run)
        done += len(people)
        if progress is not None:
            progress(done, count)
    return run


def _write_batch(people: list[DemoPerson], schema: _Schema, run: DemoRun) -> None:
    """One transaction: data keys, the rows the people's choices allow, the choices themselves,
    then a check that the ledger allows every row written (else all of it rolls back), and the
    audit. Choices and audit come last because the audit log's head stays locked from a
    transaction's first append until it commits, holding up every other audited action; the key
    scope ends with the transaction, as `data_keys_create_many` asks."""
    now = timezone.now()
    ids = [person.subject_id for person in people]
    allowed = _allowed(people, schema)
    with transaction.atomic(), crypto.key_scope():
        crypto.data_keys_create_many(ids, PROFILE)
        audited: dict[tuple[str, tuple[str, ...]], list[uuid.UUID]] = {}
        values = [row for person in people for row in _values(person, schema, allowed, now, audited)]
        documents = [row for person in people for row in _documents(person, schema, allowed, now, audited)]
        kept = [(person, event) for person in people for event in _allowed_events(person, schema, allowed)]
        crypto.data_keys_create_many(dict.fromkeys(person.subject_id for person, _ in kept), EVENTS)
        events = list(_events(kept, schema, now, audited))
        _insert(ProfileValue, values)
        _insert(ProfileDocument, documents)
        _insert(ProfileEvent, events)
        run.consent_events += consent_import_many(
            grants=[(p.subject_id, slug) for p in people for slug in p.grants],
            withdrawals=[(p.subject_id, slug) for p in people for slug in p.withdrawals],
            ages={p.subject_id: p.age for p in people},
            jurisdictions={p.subject_id: p.country for p in people},
            actor_id=ACTOR,
            batch_size=len(people) * len(CONSENT_MIX),
        )
        needed: dict[str, set[uuid.UUID]] = {}
        for (purpose, _), group in audited.items():
            needed.setdefault(purpose, set()).update(group)
        for purpose, kept_for in needed.items():
            if consent_granted_subjects(subject_ids=kept_for, purpose=purpose) != kept_for:
                raise RuntimeError(f"The ledger does not allow all the rows kept under {purpose}: nothing is kept.")
        for (purpose, fields), subjects in audited.items():
            audit_record_many(
                actor_type="system",
                actor_id=ACTOR,
                action="profile.import",
                purpose=purpose,
                fields=fields,
                subject_ids=subjects,
            )
    run.subject_ids += ids
    run.values += len(values)
    run.documents += len(documents)
    run.events += len(events)


def _allowed(people: list[DemoPerson], schema: _Schema) -> dict[str, set[uuid.UUID]]:
    """Who each purpose may process, once the people's choices are recorded: everyone for a
    contract or legal obligation, those who did not object for a legitimate interest, those who
    granted and did not withdraw for consent. The ledger is asked the same before commit."""
    allowed: dict[str, set[uuid.UUID]] = {}
    for slug, purpose in schema.purposes.items():
        if purpose.legal_basis in NO_CHOICE_BASES:
            allowed[slug] = {p.subject_id for p in people}
        elif purpose.legal_basis == LegalBasis.LEGITIMATE_INTEREST:
            allowed[slug] = {p.subject_id for p in people if slug not in p.withdrawals}
        else:
            allowed[slug] = {p.subject_id for p in people if slug in p.grants and slug not in p.withdrawals}
    return allowed


# PostgreSQL type names for binary COPY, by Django column type; a model with another column
# type is copied as text.
_COPY_TYPES = {
    "uuid": "uuid",
    "bytea": "bytea",
    "text": "text",
    "timestamp with time zone": "timestamptz",
    "integer": "int4",
    "bigint": "int8",
}


def _insert(model: type[Model], rows: list[Any]) -> None:
    """`bulk_create`, except on PostgreSQL: there a binary COPY, which inserted a batch's 80,000
    values in 1.3 s where `bulk_create` took 6 s (Django binds its arrays on the client, value
    by value) and a text COPY 2 s. Sealed fields still go through their own preparation, which
    refuses anything but ciphertext; the `auto_now` times are set as `bulk_create` sets them."""
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(rows, batch_size=2000)
        return
    fields = model._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column or f.attname) for f in fields)
    db_types = [str(f.db_type(connection)) for f in fields]
    types = [_COPY_TYPES.get(t, "text" if t.startswith("varchar") else "") for t in db_types]
    binary = all(types)
    sealed = [(i, f) for i, f in enumerate(fields) if isinstance(f, SealedField)]
    stamped = [f for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
    plain = operator.attrgetter(*(f.attname for f in fields))
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql + (" (FORMAT BINARY)" if binary else "")) as copy:
        if binary:
            copy.set_types(types)
        for row in rows:
            for f in stamped:
                f.pre_save(row, add=True)
            record = list(plain(row))
            for i, f in sealed:
                record[i] = f.get_db_prep_save(record[i], connection)
            copy.write_row(record)


def _values(
    person: DemoPerson,
    schema: _Schema,
    allowed: dict[str, set[uuid.UUID]],
    now: datetime.datetime,
    audited: dict[tuple[str, tuple[str, ...]], list[uuid.UUID]],
) -> Iterator[ProfileValue]:
    by_purpose: dict[str, list[str]] = {}
    for key, raw in person.values.items():
        definition = schema.fields.get(key)
        if definition is None:
            continue
        # The first purpose the field may be kept under that the person allows (a contract always).
        purpose = next((slug for slug in schema.bases[key] if person.subject_id in allowed.get(slug, ())), "")
        preferred = (Source.SOCIAL,) if key == "social_profile_url" else (Source.IMPORT, Source.PARTNER)
        source = _source(definition.allowed_sources, preferred)
        if not purpose or source is None:
            continue
        try:
            value = value_clean(definition, raw)
        except ProfileError:  # staff changed the field (a choice removed, a shorter maximum)
            continue
        row = ProfileValue(
            id=uuid.uuid4(),
            subject_id=person.subject_id,
            definition_id=definition.pk,
            source=source,
            source_name=person.social["provider"] if source == Source.SOCIAL and person.social else IMPORT_NAME,
            legal_basis=schema.purposes[purpose].legal_basis,
            collected_at=now,
            expires_at=now + datetime.timedelta(days=definition.retention_days),
            blind_index=value_index(definition, value) if definition.searchable else "",
        )
        seal(row, "value", value)
        by_purpose.setdefault(purpose, []).append(key)
        yield row
    for purpose, keys in by_purpose.items():
        audited.setdefault((purpose, tuple(keys)), []).append(person.subject_id)


def _documents(
    person: DemoPerson,
    schema: _Schema,
    allowed: dict[str, set[uuid.UUID]],
    now: datetime.datetime,
    audited: dict[tuple[str, tuple[str, ...]], list[uuid.UUID]],
) -> Iterator[ProfileDocument]:
    kind = schema.kinds.get("social_profile")
    if person.social is None or kind is None or Source.SOCIAL not in kind.allowed_sources:
        return
    if person.subject_id not in allowed.get(kind.purpose.slug, ()):
        return
    row = ProfileDocument(
        id=uuid.uuid4(),
        subject_id=person.subject_id,
        kind_id=kind.pk,
        source=Source.SOCIAL,
        source_name=person.social["provider"],
        legal_basis=kind.purpose.legal_basis,
        collected_at=now,
        expires_at=now + datetime.timedelta(days=kind.retention_days),
    )
    seal(row, "body", person.social)
    audited.setdefault((kind.purpose.slug, ("document.social_profile",)), []).append(person.subject_id)
    yield row


def _allowed_events(
    person: DemoPerson, schema: _Schema, allowed: dict[str, set[uuid.UUID]]
) -> Iterator[tuple[str, datetime.datetime, dict[str, Any]]]:
    """The person's events whose kind's purpose they have granted: no other is ever stored."""
    for event in person.events:
        kind = schema.kinds.get(event[0])
        if kind is not None and person.subject_id in allowed.get(kind.purpose.slug, ()):
            yield event


def _events(
    kept: list[tuple[DemoPerson, tuple[str, datetime.datetime, dict[str, Any]]]],
    schema: _Schema,
    now: datetime.datetime,
    audited: dict[tuple[str, tuple[str, ...]], list[uuid.UUID]],
) -> Iterator[ProfileEvent]:
    per_person: dict[uuid.UUID, dict[str, set[str]]] = {}
    for person, (slug, occurred_at, payload) in kept:
        kind = schema.kinds[slug]
        source = _source(kind.allowed_sources, (Source.IMPORT, Source.PARTNER))
        if source is None:
            continue
        row = ProfileEvent(
            id=uuid.uuid4(),
            subject_id=person.subject_id,
            kind_id=kind.pk,
            occurred_at=occurred_at,
            source=source,
            source_name=IMPORT_NAME if source == Source.IMPORT else PARTNER_NAME,
            legal_basis=kind.purpose.legal_basis,
            collected_at=now,
            expires_at=occurred_at + datetime.timedelta(days=kind.retention_days),
        )
        seal(row, "payload", payload)
        per_person.setdefault(person.subject_id, {}).setdefault(kind.purpose.slug, set()).add(f"event.{slug}")
        yield row
    for subject_id, by_purpose in per_person.items():
        for purpose, names in by_purpose.items():
            audited.setdefault((purpose, tuple(sorted(names))), []).append(subject_id)


# --- The demo logins' own small profiles --------------------------------------------------------


def demo_login_profile_ensure(*, subject_id: uuid.UUID, values: dict[str, Any]) -> bool:
    """Give a demo login a small profile (what they would have entered at sign-up), through the
    ordinary write path, unless they already have one. Fields the schema no longer has, or that
    no longer serve account management, are left out. Returns whether anything was written."""
    if ProfileValue.objects.filter(subject_id=subject_id).exists():
        return False
    usable = set(
        FieldDefinition.objects.filter(
            key__in=list(values), deprecated_at__isnull=True, purposes__slug=ACCOUNT_PURPOSE
        ).values_list("key", flat=True)
    )
    wanted = {key: value for key, value in values.items() if key in usable}
    if not wanted:
        return False
    profile_write(
        subject_id=subject_id,
        values=wanted,
        source=Source.IMPORT,
        purpose=ACCOUNT_PURPOSE,
        actor=Actor.system(ACTOR),
    )
    return True


def adult_birth_date(years: int, *, month: int, day: int) -> datetime.date:
    """A birth date `years` ago (on `month`/`day`), so a demo login is old enough to consent."""
    return datetime.date(timezone.localdate().year - years, month, day)
