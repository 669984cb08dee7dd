"""The age gate (GDPR Art. 8, COPPA): below the age of digital consent a person cannot consent
alone. Ages the caller does not give come from an age source named by `CONSENT_AGE_SOURCE`
(profiles provides it, from the birth date in the profile): consent sits below profiles and
must not import it."""

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

from consent.errors import AgeUnknown, ParentalConsentRequired
from consent.models import Purpose
from consent.services.evidence import jurisdiction_clean

# A person's age in completed years (None when not known) and country code ("" when not known).
AgeAndCountry = tuple[int | None, str]


class AgeSource(ABC):
    """Where the age gate learns a person's age and country when the caller did not say."""

    @abstractmethod
    def age(self, *, subject_id: uuid.UUID) -> AgeAndCountry:
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


def age_known(subject_id: uuid.UUID, age: int | None, jurisdiction: str) -> AgeAndCountry:
    """The caller's age and jurisdiction (a sign-up declaration), completed from the age source:
    its age when the caller gave none, its country when the caller gave no jurisdiction."""
    if age is None or not jurisdiction:
        known_age, country = age_source().age(subject_id=subject_id)
        age = known_age if age is None else age
        jurisdiction = jurisdiction or country
    return age, jurisdiction


def age_check(subject_id: uuid.UUID, purpose: Purpose, age: int | None, jurisdiction: str) -> str:
    """Refuse a person below the age of digital consent, or whose age is not known. Returns the
    jurisdiction the event records (the person's country when the caller gave none)."""
    age, jurisdiction = age_known(subject_id, age, jurisdiction)
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
