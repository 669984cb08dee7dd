"""The default register the data migration installs, and that it can be taken out and put back."""

import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from consent.models import ConsentEvent, ConsentState, ConsentStatus, LegalBasis, Purpose
from consent.selectors import consent_states

DEFAULT_SLUGS = [
    "account-management",
    "email-marketing",
    "push-notifications",
    "personalization",
    "analytics",
    "advertising-partners",
    "loyalty-programme",
    "data-subject-rights",
]


@pytest.mark.django_db
def test_the_default_register_is_installed():
    purposes = {purpose.slug: purpose for purpose in Purpose.objects.all()}
    assert list(purposes) == DEFAULT_SLUGS
    assert purposes["account-management"].legal_basis == LegalBasis.CONTRACT
    assert purposes["email-marketing"].requires_double_opt_in
    assert purposes["email-marketing"].data_use == "marketing.communications.email"
    assert purposes["email-marketing"].dpv_term == "dpv:DirectMarketing"
    assert purposes["advertising-partners"].is_sale_or_sharing
    assert [slug for slug, purpose in purposes.items() if purpose.is_sale_or_sharing] == ["advertising-partners"]
    for purpose in purposes.values():
        purpose.full_clean()  # DPV term, fideslang data use and categories are well-formed
        version = purpose.versions.get()
        assert version.label == "1"
        assert version.sha256 == hashlib.sha256(version.text.encode()).hexdigest()


@pytest.mark.django_db
def test_nobody_is_pre_granted(alice):
    assert not ConsentEvent.objects.exists()
    assert not ConsentState.objects.exists()
    states = {item.purpose: item.state for item in consent_states(subject_id=alice.id)}
    assert states.pop("account-management") == ConsentStatus.NOT_APPLICABLE
    assert states.pop("data-subject-rights") == ConsentStatus.NOT_APPLICABLE
    assert set(states.values()) == {ConsentStatus.NOT_GIVEN}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_migrations_reverse_and_reapply():
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([("consent", "0001_purposes_policies_ledger")])
        assert not Purpose.objects.exists()
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes("consent"))
        assert list(Purpose.objects.values_list("slug", flat=True)) == DEFAULT_SLUGS
    finally:
        # Whatever happened, leave every app migrated for the tests that follow.
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
