"""The profile as the consent age gate's age source (`CONSENT_AGE_SOURCE`, the default): the
birth date in the profile, the country from its country field. Consent sits below profiles and
cannot read the profile itself; it asks this through the setting."""

import datetime
import uuid
from collections.abc import Iterable, Mapping

from consent.services import AgeSource
from profiles.gate import profile_ages, profile_birth_date


class ProfileAgeSource(AgeSource):
    def birth_date(self, *, subject_id: uuid.UUID) -> tuple[datetime.date | None, str]:
        return profile_birth_date(subject_id=subject_id)

    def ages(self, *, subject_ids: Iterable[uuid.UUID]) -> Mapping[uuid.UUID, tuple[int | None, str]]:
        return profile_ages(subject_ids=subject_ids)
