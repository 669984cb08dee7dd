"""What consent asks of the apps above it through settings naming a dotted path, since it imports
neither: a person's age and country (CONSENT_AGE_SOURCE, profiles by default) and their own
address for confirmation mail (CONSENT_MAIL_ADDRESS_SOURCE, accounts by default)."""

import uuid
from datetime import date

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured

from consent.errors import AgeUnknown, BirthDateMismatch, NoAccount, ParentalConsentRequired
from consent.models import ConsentEvent
from consent.services import AgeSource, consent_grant, consent_import_many, consent_request

pytestmark = pytest.mark.django_db

# People without an account or a profile: only the sources below know them.
ADULT, CHILD, STRANGER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def years_ago(years: int) -> date:
    today = date.today()
    return today.replace(year=today.year - years, day=1)


class KnownAges(AgeSource):
    known = {ADULT: (30, "DE"), CHILD: (12, "DE")}
    bulk_calls: list[list[uuid.UUID]] = []

    def birth_date(self, *, subject_id):
        age, country = self.known.get(subject_id, (None, ""))
        return (None if age is None else years_ago(age)), country

    def ages(self, *, subject_ids):
        subject_ids = list(subject_ids)
        self.bulk_calls.append(subject_ids)
        return {s: self.known[s] for s in subject_ids if s in self.known}


def address_of(*, subject_id):
    return "adult@example.org" if subject_id == ADULT else None


@pytest.fixture
def known_ages(settings):
    settings.CONSENT_AGE_SOURCE = f"{__name__}.KnownAges"
    KnownAges.bulk_calls = []
    return KnownAges


def test_the_age_gate_asks_the_configured_source(known_ages, newsletter):
    event = consent_grant(subject_id=ADULT, purpose="newsletter", method="web_form")
    assert event.jurisdiction == "DE", "the source's country is the event's jurisdiction"
    with pytest.raises(ParentalConsentRequired):
        consent_grant(subject_id=CHILD, purpose="newsletter", method="web_form")
    with pytest.raises(AgeUnknown):
        consent_grant(subject_id=STRANGER, purpose="newsletter", method="web_form")
    consent_grant(subject_id=STRANGER, purpose="newsletter", method="web_form", age=40, jurisdiction="NL")


def test_the_birth_date_the_source_holds_outranks_what_a_caller_says(known_ages, newsletter):
    """A declared birth date must agree with the stored one; an age an internal caller passes
    counts only for someone the source knows nothing about."""
    with pytest.raises(BirthDateMismatch):
        consent_grant(subject_id=CHILD, purpose="newsletter", method="api", birth_date=years_ago(40))
    with pytest.raises(ParentalConsentRequired):
        consent_grant(subject_id=CHILD, purpose="newsletter", method="web_form", age=40)
    event = consent_grant(subject_id=ADULT, purpose="newsletter", method="api", birth_date=years_ago(30))
    assert event.event_type == "grant", "the same date as the stored one is fine"


def test_an_import_asks_the_source_in_bulk_for_those_it_was_told_nothing_about(known_ages, newsletter):
    assert consent_import_many(grants=[(ADULT, "newsletter"), (STRANGER, "newsletter")], ages={STRANGER: 40}) == 2
    assert known_ages.bulk_calls == [[ADULT, STRANGER]], "one call; STRANGER for the country only"
    with pytest.raises(ParentalConsentRequired):
        consent_import_many(grants=[(CHILD, "newsletter")])
    assert ConsentEvent.objects.count() == 2


def test_an_age_source_that_is_not_one_is_refused(settings, newsletter):
    settings.CONSENT_AGE_SOURCE = "consent.models.Purpose"
    with pytest.raises(ImproperlyConfigured, match="CONSENT_AGE_SOURCE"):
        consent_grant(subject_id=ADULT, purpose="newsletter", method="web_form")


def test_confirmation_mail_goes_to_the_address_the_configured_source_gives(known_ages, settings, double_opt_in):
    settings.CONSENT_MAIL_ADDRESS_SOURCE = f"{__name__}.address_of"
    consent_request(subject_id=ADULT, purpose="mailings")
    assert mail.outbox[-1].to == ["adult@example.org"]
    with pytest.raises(NoAccount):
        consent_request(subject_id=STRANGER, purpose="mailings", age=40)
