"""The hot-path checks and the per-purpose listing: one query each for the checks, legal bases,
material policy changes and the personas' separation."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from consent.errors import UnknownPurpose
from consent.models import ConsentStatus, Method
from consent.selectors import consent_granted_subjects, consent_is_granted, consent_states
from consent.services import consent_grant, consent_refuse, consent_withdraw, policy_version_publish


def grant(subject_id, purpose="newsletter", **kwargs):
    return consent_grant(subject_id=subject_id, purpose=purpose, method=Method.WEB_FORM, **kwargs)


def test_consent_is_never_presumed(alice, newsletter):
    assert consent_is_granted(subject_id=alice.id, purpose="newsletter") is False
    assert consent_granted_subjects(subject_ids=[alice.id], purpose="newsletter") == set()


def test_one_persons_grant_is_theirs_alone(alice, bob, newsletter):
    grant(alice.id)
    assert consent_is_granted(subject_id=alice.id, purpose="newsletter")
    assert not consent_is_granted(subject_id=bob.id, purpose="newsletter")
    assert consent_granted_subjects(subject_ids=[alice.id, bob.id], purpose="newsletter") == {alice.id}


def test_a_grant_for_one_purpose_is_not_one_for_another(alice, newsletter, ad_sharing):
    grant(alice.id)
    assert not consent_is_granted(subject_id=alice.id, purpose="ad-sharing")


def test_the_check_is_one_query(alice, newsletter, django_assert_num_queries):
    grant(alice.id)
    with django_assert_num_queries(1):
        assert consent_is_granted(subject_id=alice.id, purpose="newsletter")
    with django_assert_num_queries(1):
        assert not consent_is_granted(subject_id=uuid.uuid4(), purpose="newsletter")


def test_the_bulk_check_is_one_query(alice, bob, newsletter, django_assert_num_queries):
    grant(alice.id)
    grant(bob.id)
    consent_withdraw(subject_id=bob.id, purpose="newsletter", method=Method.WEB_FORM)
    strangers = [uuid.uuid4() for _ in range(500)]
    with django_assert_num_queries(1):
        granted = consent_granted_subjects(subject_ids=[alice.id, bob.id, *strangers, alice.id], purpose="newsletter")
    assert granted == {alice.id}


def test_unknown_purposes_are_errors_not_answers(alice, newsletter):
    with pytest.raises(UnknownPurpose):
        consent_is_granted(subject_id=alice.id, purpose="newsleter")
    with pytest.raises(UnknownPurpose):
        consent_granted_subjects(subject_ids=[alice.id], purpose="newsleter")
    with pytest.raises(UnknownPurpose):
        consent_granted_subjects(subject_ids=[], purpose="newsleter")
    assert consent_granted_subjects(subject_ids=[], purpose="newsletter") == set()


def test_contract_purposes_are_always_on(alice, bob, orders):
    assert consent_is_granted(subject_id=alice.id, purpose="orders")
    assert consent_granted_subjects(subject_ids=[alice.id, bob.id], purpose="orders") == {alice.id, bob.id}


def test_legitimate_interest_is_on_until_the_person_objects(alice, bob, fraud_checks):
    consent_withdraw(subject_id=bob.id, purpose="fraud-checks", method=Method.WEB_FORM)
    assert consent_granted_subjects(subject_ids=[alice.id, bob.id], purpose="fraud-checks") == {alice.id}
    assert not consent_is_granted(subject_id=bob.id, purpose="fraud-checks")


def test_a_material_version_makes_earlier_grants_stop_counting_until_renewed(alice, bob, newsletter):
    grant(alice.id)
    grant(bob.id)
    policy_version_publish(purpose="newsletter", label="v2", text="Clearer wording.")  # not material
    assert consent_granted_subjects(subject_ids=[alice.id, bob.id], purpose="newsletter") == {alice.id, bob.id}

    policy_version_publish(purpose="newsletter", label="v3", text="We now also use your address.", is_material=True)
    assert not consent_is_granted(subject_id=alice.id, purpose="newsletter")
    assert consent_granted_subjects(subject_ids=[alice.id, bob.id], purpose="newsletter") == set()
    assert _state(alice.id, "newsletter") == ConsentStatus.NEEDS_RENEWAL

    renewal = grant(alice.id)
    assert (renewal.event_type, renewal.policy_version.label) == ("renew", "v3")
    assert consent_is_granted(subject_id=alice.id, purpose="newsletter")
    assert consent_granted_subjects(subject_ids=[alice.id, bob.id], purpose="newsletter") == {alice.id}
    assert _state(alice.id, "newsletter") == ConsentStatus.GRANTED
    assert _state(bob.id, "newsletter") == ConsentStatus.NEEDS_RENEWAL


def test_a_scheduled_material_version_counts_only_from_its_effective_date(alice, newsletter):
    grant(alice.id)
    policy_version_publish(
        purpose="newsletter",
        label="v2",
        text="Next month.",
        is_material=True,
        effective_from=timezone.now() + timedelta(days=30),
    )
    assert consent_is_granted(subject_id=alice.id, purpose="newsletter")
    assert _state(alice.id, "newsletter") == ConsentStatus.GRANTED


def test_a_grant_under_a_later_non_material_version_still_stands_after_a_material_one(alice, newsletter):
    policy_version_publish(purpose="newsletter", label="v2", text="Material.", is_material=True)
    policy_version_publish(purpose="newsletter", label="v3", text="Typo fixed.")
    grant(alice.id)  # against v3, newer than the material v2
    assert consent_is_granted(subject_id=alice.id, purpose="newsletter")


def _state(subject_id, slug):
    return next(item.state for item in consent_states(subject_id=subject_id) if item.purpose == slug)


def test_consent_states_lists_every_purpose(alice, bob, newsletter, ad_sharing, orders, fraud_checks, make_purpose):
    make_purpose("loyalty")
    make_purpose("unpublished", published=False)
    grant(alice.id)
    consent_refuse(subject_id=alice.id, purpose="ad-sharing", method=Method.WEB_FORM)
    consent_withdraw(subject_id=alice.id, purpose="fraud-checks", method=Method.WEB_FORM)

    states = {item.purpose: item for item in consent_states(subject_id=alice.id)}
    assert {
        slug: item.state
        for slug, item in states.items()
        if slug in {"newsletter", "ad-sharing", "orders", "fraud-checks", "loyalty", "unpublished"}
    } == {
        "newsletter": ConsentStatus.GRANTED,
        "ad-sharing": ConsentStatus.REFUSED,
        "orders": ConsentStatus.NOT_APPLICABLE,
        "fraud-checks": ConsentStatus.WITHDRAWN,
        "loyalty": ConsentStatus.NOT_GIVEN,
        "unpublished": ConsentStatus.NOT_GIVEN,
    }
    newsletter_state = states["newsletter"]
    assert newsletter_state.is_granted
    assert newsletter_state.decided_policy == "v1"
    assert newsletter_state.current_policy is not None
    assert newsletter_state.current_policy.label == "v1"
    assert newsletter_state.current_policy.sha256 == newsletter.versions.get().sha256
    assert newsletter_state.changed_at is not None
    assert states["orders"].is_granted and not states["fraud-checks"].is_granted
    assert states["unpublished"].current_policy is None
    assert states["ad-sharing"].is_sale_or_sharing

    # Bob chose nothing: consent purposes are off, the contract one is on.
    for item in consent_states(subject_id=bob.id):
        assert item.is_granted == (item.legal_basis in {"contract", "legal_obligation", "legitimate_interest"})
        assert item.state in {ConsentStatus.NOT_GIVEN, ConsentStatus.NOT_APPLICABLE}
        assert item.decided_policy is None


def test_consent_states_takes_three_queries_whatever_the_purposes(
    alice, newsletter, make_purpose, django_assert_num_queries
):
    for n in range(5):
        make_purpose(f"purpose-{n}")
        grant(alice.id, purpose=f"purpose-{n}")
    with django_assert_num_queries(3):
        consent_states(subject_id=alice.id)


def test_the_listing_agrees_with_the_checks(alice, bob, newsletter, ad_sharing, orders, fraud_checks):
    grant(alice.id)
    grant(alice.id, purpose="ad-sharing")
    consent_withdraw(subject_id=alice.id, purpose="ad-sharing", method=Method.GPC)
    policy_version_publish(purpose="newsletter", label="v2", text="Material.", is_material=True)
    for person in (alice, bob):
        for item in consent_states(subject_id=person.id):
            assert item.is_granted == consent_is_granted(subject_id=person.id, purpose=item.purpose)
