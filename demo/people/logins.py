"""The demo logins' own small profiles (what they would have entered at sign-up)."""

import datetime
import uuid
from typing import Any

from django.utils import timezone

from demo.people.generate import ACTOR
from profiles.gate import ACCOUNT_PURPOSE, Actor, profile_write
from profiles.models import (
    FieldDefinition,
    ProfileValue,
    Source,
)


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
