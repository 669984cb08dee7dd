"""Who the demo people are: names, places, ages, profiles, consents, orders and events drawn
from weighted pools (Faker per country), independently of how they are written."""

import datetime
import random
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import timezone
from faker import Faker

from consent.services import age_in_years
from profiles.gate import ACCOUNT_PURPOSE

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


class PeopleGenerator:
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
