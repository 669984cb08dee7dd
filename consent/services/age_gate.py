"""The age gate (GDPR Art. 8, COPPA): below the age of digital consent a person cannot consent
alone. The person's birth date comes from an age source named by `CONSENT_AGE_SOURCE` (profiles
provides it, from the birth date in the profile): consent sits below profiles and must not
import it. A birth date the caller declares is compared with the stored one, never preferred to
it. `birth_date_check` is the one rule for a date of birth, wherever one is typed in."""

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from datetime import date
from functools import cache
from itertools import batched

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.module_loading import import_string

from consent.errors import AgeUnknown, BirthDateMismatch, InvalidBirthDate, ParentalConsentRequired
from consent.models import Purpose
from consent.services.evidence import jurisdiction_clean

# A person's age in completed years (None when not known) and country code ("" when not known).
AgeAndCountry = tuple[int | None, str]
# A person's date of birth (None when not known) and country code ("" when not known).
BirthDateAndCountry = tuple[date | None, str]

# No one born earlier is alive: an earlier date is a typing mistake (or a probe).
EARLIEST_BIRTH_DATE = date(1900, 1, 1)


class AgeSource(ABC):
    """Where the age gate learns a person's date of birth and country."""

    @abstractmethod
    def birth_date(self, *, subject_id: uuid.UUID) -> BirthDateAndCountry:
        """(None, "") when nothing is known."""

    @abstractmethod
    def ages(self, *, subject_ids: Iterable[uuid.UUID]) -> Mapping[uuid.UUID, AgeAndCountry]:
        """`age` for many people at once (a consent import); those it knows nothing about may
        be left out."""


def age_source() -> AgeSource:
    """The age source `CONSENT_AGE_SOURCE` names (a dotted path to an `AgeSource` subclass)."""
    return _age_source(settings.CONSENT_AGE_SOURCE)


@cache
def _age_source(path: str) -> AgeSource:
    source_class = import_string(path)
    if not (isinstance(source_class, type) and issubclass(source_class, AgeSource)):
        raise ImproperlyConfigured("CONSENT_AGE_SOURCE must name a subclass of consent.services.AgeSource.")
    source: AgeSource = source_class()
    return source


def birth_date_check(born: date, *, today: date | None = None) -> date:
    """The one rule for a date of birth, wherever it comes in (the profile, sign-up, the consent
    API): not in the future, not before 1900. Returns it; raises `InvalidBirthDate`."""
    today = today or timezone.localdate()
    if born > today:
        raise InvalidBirthDate("A date of birth cannot be in the future.")
    if born < EARLIEST_BIRTH_DATE:
        raise InvalidBirthDate("Please check the year: a date of birth before 1900 is not accepted.")
    return born


def age_in_years(born: date, today: date | None = None) -> int:
    """Completed years between a birth date and `today` (default: the local date): the age the
    age gate compares with the age of digital consent."""
    today = today or timezone.localdate()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def digital_consent_age(purpose: Purpose, jurisdiction: str = "") -> int:
    """The age below which a person cannot consent alone: the country's age of digital consent
    (GDPR Art. 8; COPPA), or the purpose's own minimum if that is higher."""
    ages = settings.VAULT_DIGITAL_CONSENT_AGES
    country = (jurisdiction or settings.VAULT_CONTROLLER["jurisdiction"]).upper().split("-")[0]
    return max(ages.get(country, ages["default"]), purpose.min_age or 0)


def age_known(
    subject_id: uuid.UUID, age: int | None, jurisdiction: str, birth_date: date | None = None
) -> AgeAndCountry:
    """The age the gate decides on, and the jurisdiction (the caller's, else the person's country).

    The birth date the age source holds (the profile's) decides. A `birth_date` the caller
    declares (the consent API's) must agree with it: a different one is refused
    (`BirthDateMismatch`), since changing one's birth date is a rectification of the profile,
    validated and audited there; where none is stored, the declared one is used and not stored.
    `age` is what an internal caller already knows (sign-up works it out from the date it stores
    in the same transaction; tests): used only when no birth date is stored."""
    if birth_date is not None:
        birth_date_check(birth_date)
    stored, country = age_source().birth_date(subject_id=subject_id)
    if stored is not None:
        if birth_date is not None and birth_date != stored:
            raise BirthDateMismatch()
        age = age_in_years(stored)
    elif birth_date is not None:
        age = age_in_years(birth_date)
    return age, jurisdiction or country


def age_check(
    subject_id: uuid.UUID, purpose: Purpose, age: int | None, jurisdiction: str, birth_date: date | None = None
) -> str:
    """Refuse a person below the age of digital consent, or whose age is not known. Returns the
    jurisdiction the event records (the person's country when the caller gave none)."""
    age, jurisdiction = age_known(subject_id, age, jurisdiction, birth_date)
    if age is None:
        raise AgeUnknown()
    if age < digital_consent_age(purpose, jurisdiction):
        raise ParentalConsentRequired()
    return jurisdiction


def ages_check(
    pairs: list[tuple[uuid.UUID, Purpose]], ages: dict[uuid.UUID, int], regions: dict[uuid.UUID, str]
) -> dict[uuid.UUID, str]:
    """`age_check` for many grants: the jurisdiction each person's grants record, or
    `AgeUnknown` / `ParentalConsentRequired` for the first person who may not consent alone.
    The ages of those the caller told nothing about are asked of the age source in bulk."""
    subjects = list(dict.fromkeys(s for s, _ in pairs))
    unknown = [s for s in subjects if s not in ages or not regions.get(s)]
    for chunk in batched(unknown, 5000):
        for subject_id, (age, country) in age_source().ages(subject_ids=chunk).items():
            if subject_id not in ages and age is not None:
                ages[subject_id] = age
            if not regions.get(subject_id):
                regions[subject_id] = jurisdiction_clean(country)
    for subject_id, purpose in pairs:
        if subject_id not in ages:
            raise AgeUnknown(f"The age of a person is not known (subject {subject_id}).", param="grants")
        if ages[subject_id] < digital_consent_age(purpose, regions.get(subject_id, "")):
            raise ParentalConsentRequired(f"A person cannot consent alone (subject {subject_id}).", param="grants")
    return {s: regions.get(s, "") for s in subjects}
