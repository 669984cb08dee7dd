"""The tests' data, made in one place and through the application's own writes.

Tests import what they need from here; conftest.py files hold only fixtures (which call these).
People come from `UserFactory` (`staff=True` for a staff member), purposes with a published policy
from `PurposeFactory`; what a person does (fills in their profile, consents, sets up TOTP) goes
through the same services the portal calls, so audit entries and sealed values are real.
"""

from datetime import timedelta

import factory
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.db import connection
from django.utils import timezone

from accounts.models import User
from consent.models import LegalBasis, Method, Purpose
from consent.services import consent_grant, policy_version_publish
from profiles.gate import RIGHTS_PURPOSE, Actor, profile_write
from profiles.models import Source

PASSWORD = "correct horse battery"


class UserFactory(factory.django.DjangoModelFactory[User]):
    """A person who signed up with an e-mail address and `PASSWORD`. `staff=True` makes a staff
    member (whom the suite's `staff_mfa` fixture gives a TOTP authenticator); `superuser=True` one
    with every permission."""

    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    password = PASSWORD

    class Params:
        staff = factory.Trait(is_staff=True)
        superuser = factory.Trait(is_staff=True, is_superuser=True)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # Through the manager, as sign-up does: the address normalized, the password hashed.
        return cls._get_manager(model_class).create_user(*args, **kwargs)


class PurposeFactory(factory.django.DjangoModelFactory[Purpose]):
    """A purpose with a first policy version "v1" in force since a minute ago (`published=False`:
    no version yet, so no one can consent to it)."""

    class Meta:
        model = Purpose
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"test-purpose-{n}")
    name = factory.LazyAttribute(lambda purpose: purpose.slug.replace("-", " ").title())
    description = factory.LazyAttribute(lambda purpose: f"Test purpose {purpose.slug}.")
    legal_basis = LegalBasis.CONSENT
    dpv_term = "dpv:DirectMarketing"
    data_use = "marketing.communications.email"
    data_categories = factory.LazyFunction(lambda: ["user.contact.email"])

    @factory.post_generation
    def published(purpose, create, extracted, **kwargs):
        if create and extracted is not False:
            policy_version_publish(
                purpose=purpose.slug,
                label="v1",
                text=f"The {purpose.slug} policy.\n",
                effective_from=timezone.now() - timedelta(minutes=1),
            )


def fill(person: User, **values) -> list[str]:
    """Profile values as the person would enter them in the portal."""
    return profile_write(
        subject_id=person.pk,
        values=values,
        source=Source.SELF_SERVICE,
        purpose=RIGHTS_PURPOSE,
        actor=Actor.person(person.pk),
    )


def grant(person: User, *purposes: str) -> None:
    """The person, an adult, consents to each purpose on a web form."""
    for purpose in purposes:
        consent_grant(subject_id=person.pk, purpose=purpose, method=Method.WEB_FORM, age=30)


def give_birth_date(person: User, birth_date: str = "1990-06-01") -> User:
    """The person tells their date of birth (the consent age gate reads it from the profile)."""
    fill(person, birth_date=birth_date)
    return person


def add_totp(person: User) -> Authenticator:
    """Give the person a TOTP authenticator, as allauth's setup page would."""
    return TOTP.activate(person, generate_totp_secret()).instance


# The audit log's tables refuse updates and deletes on PostgreSQL (append-only triggers), and its
# head moves only forward (another trigger); tests that must tamper with the log, or empty it,
# lift the triggers for a moment.
AUDIT_TABLES = ("vault_auditentry", "vault_auditentrysubject", "vault_auditcheckpoint", "vault_audithead")


def set_audit_triggers(*, enabled: bool) -> None:
    """Switch the audit log's append-only triggers (PostgreSQL; SQLite has none)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in AUDIT_TABLES:
            cursor.execute(f"ALTER TABLE {table} {'ENABLE' if enabled else 'DISABLE'} TRIGGER USER")


def totp_code(secret: str, *, margin: float = 3.0) -> str:
    """The TOTP code allauth accepts now for `secret`. allauth allows no clock drift by default
    (`MFA_TOTP_TOLERANCE` 0), so a code made in the last seconds of its 30-second step can expire
    before the request that carries it is checked: wait for the next step then."""
    import time

    from allauth.mfa import app_settings as mfa_settings
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    period = mfa_settings.TOTP_PERIOD
    left = period - time.time() % period
    if left < margin:
        time.sleep(left + 0.05)
    return format_hotp_value(hotp_value(secret, int(time.time()) // period))
