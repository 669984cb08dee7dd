import pytest

from consent.models import Method
from consent.services import consent_grant
from profiles.gate import RIGHTS_PURPOSE, Actor, profile_write
from profiles.models import Source


@pytest.fixture
def schema(profile_schema):
    """The default purposes and profile schema."""


def grant(subject, *purposes):
    for purpose in purposes:
        consent_grant(subject_id=subject.pk, purpose=purpose, method=Method.WEB_FORM, age=30)


def fill(subject, **values):
    """Values as the person would enter them in the portal."""
    return profile_write(
        subject_id=subject.pk,
        values=values,
        source=Source.SELF_SERVICE,
        purpose=RIGHTS_PURPOSE,
        actor=Actor.person(subject.pk),
    )
