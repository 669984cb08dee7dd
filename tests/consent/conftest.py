"""Purposes made for each test (the migration's default set is tested on its own), and people
old enough to consent."""

import pytest

from consent.models import LegalBasis, Purpose
from tests.factories import PurposeFactory, give_birth_date


# The people of the consent tests are adults who told their date of birth: the age gate refuses
# anyone whose age it does not know (tests/consent/test_links.py covers that).
@pytest.fixture
def alice(alice, profile_schema):
    return give_birth_date(alice)


@pytest.fixture
def bob(bob, profile_schema):
    return give_birth_date(bob)


@pytest.fixture
def make_purpose(db):
    """A purpose with a first policy version "v1" in force since a minute ago."""

    def make(slug="newsletter", *, basis=LegalBasis.CONSENT, published=True, **fields) -> Purpose:
        return PurposeFactory.create(slug=slug, legal_basis=basis, published=published, **fields)

    return make


@pytest.fixture
def newsletter(make_purpose) -> Purpose:
    return make_purpose("newsletter")


@pytest.fixture
def ad_sharing(make_purpose) -> Purpose:
    return make_purpose("ad-sharing", is_sale_or_sharing=True)


@pytest.fixture
def double_opt_in(make_purpose) -> Purpose:
    return make_purpose("mailings", requires_double_opt_in=True)


@pytest.fixture
def orders(make_purpose) -> Purpose:
    return make_purpose("orders", basis=LegalBasis.CONTRACT)


@pytest.fixture
def fraud_checks(make_purpose) -> Purpose:
    return make_purpose("fraud-checks", basis=LegalBasis.LEGITIMATE_INTEREST)
