"""What a provider's answer can fill in, field by field: the offers the social sign-up screen
shows (unticked), with the reason for a claim that cannot be used, and the import of the ticked
ones (source "social")."""

import datetime
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from allauth.socialaccount.models import SocialAccount, SocialLogin
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_countries import countries

from accounts.social.policies import provider_policy
from profiles.errors import ProfileError, ValueTooLong
from profiles.gate import (
    RIGHTS_PURPOSE,
    Actor,
    profile_read,
    profile_write,
)
from profiles.models import FieldDefinition, Source
from profiles.selectors import profile_source_fields
from profiles.services import profile_source_confirm
from profiles.types import value_clean

# One logger for social sign-in, whichever module writes the line.
logger = logging.getLogger("accounts.social")


@dataclass(frozen=True)
class ImportOffer:
    """A value the provider gave for a profile field, offered to the person at sign-up; or, with
    a `problem`, one that cannot be copied, shown with the reason (and `value` None)."""

    key: str
    label: str
    value: Any
    shown: str
    problem: str = ""

    @property
    def importable(self) -> bool:
        return not self.problem


_SHOWN_MAX = 60  # characters of an unusable value shown on the screen


def _shown_raw(raw: Any) -> str:
    text = ", ".join(map(str, raw)) if isinstance(raw, list) else str(raw)
    return text if len(text) <= _SHOWN_MAX else f"{text[: _SHOWN_MAX - 1]}…"


def _problem(definition: FieldDefinition, raw: Any, error: ProfileError) -> str:
    """Why the provider's value cannot be copied, in words for the sign-up screen."""
    if isinstance(error, ValueTooLong):
        if definition.max_length and isinstance(raw, str) and len(raw.strip()) > definition.max_length:
            return gettext("longer than this field allows (%(count)d characters)") % {"count": definition.max_length}
        return gettext("longer than this field allows")
    return gettext("not in a form this field accepts")


def _claims(extra_data: dict[str, Any]) -> dict[str, Any]:
    """The claims themselves: OpenID Connect keeps userinfo and the ID token apart."""
    picked = extra_data.get("userinfo") or extra_data.get("id_token")
    return picked if isinstance(picked, dict) else extra_data


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _birth_date(claims: dict[str, Any], common: dict[str, Any]) -> Any:
    if birthdate := _text(claims.get("birthdate")):  # OpenID Connect: YYYY-MM-DD
        return birthdate
    if birthday := _text(claims.get("birthday")):  # Facebook: MM/DD/YYYY (MM/DD without consent to the year)
        try:
            return datetime.datetime.strptime(birthday, "%m/%d/%Y").date()
        except ValueError:
            return None
    return None


def _place(claims: dict[str, Any]) -> tuple[str, str]:
    """(city, country) as the provider told them."""
    address = claims.get("address")
    if isinstance(address, dict):  # OpenID Connect's address claim
        return _text(address.get("locality")), _text(address.get("country"))
    location = claims.get("location")
    if isinstance(location, dict):  # Facebook: {"name": "Amsterdam, Netherlands"}
        location = location.get("name")
    city, _, country = _text(location).partition(",")  # GitHub: free text
    return city.strip(), country.strip()


def _country(claims: dict[str, Any], common: dict[str, Any]) -> Any:
    country = _place(claims)[1]
    if not country:
        return None
    return country.upper() if country.upper() in countries else countries.by_name(country) or None


def _interests(claims: dict[str, Any], common: dict[str, Any]) -> Any:
    likes = claims.get("likes")
    names = [
        f"{_text(like.get('name'))} {_text(like.get('category'))}".lower()
        for like in (likes.get("data", []) if isinstance(likes, dict) else [])
        if isinstance(like, dict)
    ]
    return names or None  # matched against the field's choices below


def _name_part(index: int) -> Callable[[dict[str, Any], dict[str, Any]], Any]:
    key = ("first_name", "last_name")[index]

    def extract(claims: dict[str, Any], common: dict[str, Any]) -> Any:
        if value := _text(common.get(key)):
            return value
        first, _, rest = _text(common.get("name")).partition(" ")
        return (first, rest)[index] or None

    return extract


# Field key, what the person is asked about, how to find it in the provider's answer.
IMPORTS: list[tuple[str, Any, Callable[[dict[str, Any], dict[str, Any]], Any]]] = [
    ("given_name", _("Your first name"), _name_part(0)),
    ("family_name", _("Your last name"), _name_part(1)),
    ("birth_date", _("Your birthday"), _birth_date),
    ("country", _("Your country (from your location)"), _country),
    ("city", _("Your city (from your location)"), lambda claims, common: _place(claims)[0] or None),
    ("interests", _("Your interests (from your likes)"), _interests),
]


def social_import_offers(sociallogin: SocialLogin) -> list[ImportOffer]:
    """What the provider's answer holds for the profile, one offer per field. A value the field
    would refuse (too long, malformed) comes with its `problem` instead of a value: it is shown
    as not importable, rather than failing the sign-up or vanishing without a word."""
    return social_answer_offers(account=sociallogin.account, extra_data=sociallogin.account.extra_data)


def social_answer_offers(*, account: SocialAccount, extra_data: Any) -> list[ImportOffer]:
    """The offers of one provider answer (`extra_data`, as allauth keeps it) for `account`'s
    provider: only fields its policy lets it fill (accounts/social/policies.py)."""
    if not isinstance(extra_data, dict) or not extra_data:
        return []
    claims = _claims(extra_data)
    try:
        common = account.get_provider().extract_common_fields(extra_data) or {}
    except Exception:  # a provider's parser meeting a malformed answer
        logger.warning("Provider %s: unreadable profile response", account.provider)
        common = {}
    allowed = provider_policy(account.provider).fields
    definitions = {
        d.key: d
        for d in FieldDefinition.objects.filter(
            key__in=[key for key, _, _ in IMPORTS if key in allowed], deprecated_at__isnull=True
        )
        if Source.SOCIAL in d.allowed_sources and d.person_can_edit
    }
    offers = []
    for key, label, extract in IMPORTS:
        definition = definitions.get(key)
        if definition is None:
            continue
        try:
            raw = extract(claims, common)
        except (AttributeError, TypeError, ValueError):
            raw = None
        if key == "interests" and raw:
            raw = [choice for choice in definition.choices if any(choice in like for like in raw)] or None
        if raw is None:
            continue
        try:
            value = value_clean(definition, raw)
        except ProfileError as error:
            offers.append(ImportOffer(key, str(label), None, _shown_raw(raw), _problem(definition, raw, error)))
            continue
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        offers.append(ImportOffer(key, str(label), value, shown))
    return offers


def social_claims_import(
    *, subject_id: uuid.UUID, provider: str, offers: list[ImportOffer], keys: list[str]
) -> list[str]:
    """Write the offered values the person chose (`keys`) to their profile; returns the keys."""
    values = {offer.key: offer.value for offer in offers if offer.key in keys and offer.importable}
    if not values:
        return []
    return profile_write(
        subject_id=subject_id,
        values=values,
        source=Source.SOCIAL,
        source_name=provider[:64],
        purpose=RIGHTS_PURPOSE,  # the person's own choice, on the sign-up screen
        actor=Actor.person(subject_id),
    )


def social_claims_refresh(
    *, account: SocialAccount, extra_data: Any, actor: Actor, collected_at: datetime.datetime
) -> list[str]:
    """Bring the fields the person chose to import from `account`'s provider up to date with a
    newer answer: only fields whose current value has source "social" and this provider as
    source name (what the sign-up import wrote), and that the provider's policy lets it fill.
    A changed value is written with a new collected time (its earlier value goes to the
    history); an unchanged one counts as collected again now (its retention runs from now,
    nothing is rewritten); a claim the provider no longer sends is left as it is.
    Returns the keys written."""
    provider = account.provider[:64]
    held = profile_source_fields(subject_id=account.user_id, source=Source.SOCIAL, source_name=provider)
    chosen = {key for key, _, _ in held}
    offers = {
        offer.key: offer.value
        for offer in social_answer_offers(account=account, extra_data=extra_data)
        if offer.importable and offer.key in chosen
    }
    if not offers:
        return []
    current = profile_read(subject_id=account.user_id, fields=list(offers), purpose=RIGHTS_PURPOSE, actor=actor)
    ours = {
        key
        for key in offers
        if key in current and (current[key].source, current[key].source_name) == (Source.SOCIAL, provider)
    }
    changed = {key: offers[key] for key in ours if current[key].value != offers[key]}
    if same := ours - set(changed):
        profile_source_confirm(
            subject_id=account.user_id, source=Source.SOCIAL, source_name=provider, keys=same, collected_at=collected_at
        )
    if not changed:
        return []
    return profile_write(
        subject_id=account.user_id,
        values=changed,
        source=Source.SOCIAL,
        source_name=provider,
        purpose=RIGHTS_PURPOSE,  # the person's own choice at sign-up, kept up to date
        actor=actor,
        collected_at=collected_at,
    )
