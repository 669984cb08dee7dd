"""Installs the default register of purposes, each with a first policy text in force from now.

Every purpose resting on consent starts with nobody's consent: no grants are installed, ever.
The texts are plain-language starting points for a brand to replace (by publishing a new
version) before going live. Reversing removes the purposes again, which the database refuses
once anyone has made a choice about them (the ledger protects what it names).
"""

import hashlib

from django.db import migrations, router
from django.utils import timezone

DEFAULT_PURPOSES = [
    {
        "slug": "account-management",
        "name": "Account management",
        "description": "Running your account: signing in, keeping your details, answering your requests.",
        "legal_basis": "contract",
        "dpv_term": "dpv:AccountManagement",
        "data_use": "essential.service",
        "data_categories": ["user.account", "user.contact.email", "user.name", "user.unique_id"],
        "text": (
            "We use your account details to let you sign in, keep your profile, and answer your "
            "requests. This is needed to provide the service you signed up for, so it does not "
            "depend on consent; it ends when you close your account."
        ),
    },
    {
        "slug": "email-marketing",
        "name": "E-mail marketing",
        "description": "News, offers and tips by e-mail.",
        "legal_basis": "consent",
        "dpv_term": "dpv:DirectMarketing",
        "data_use": "marketing.communications.email",
        "requires_double_opt_in": True,
        "min_age": 16,
        "data_categories": ["user.contact.email", "user.name"],
        "text": (
            "With your consent we send you news, offers and tips by e-mail. We confirm your address "
            "first (double opt-in). You can withdraw at any time, in your privacy settings or with "
            "the link in every message."
        ),
    },
    {
        "slug": "push-notifications",
        "name": "Push notifications",
        "description": "Offers and reminders as notifications on your devices.",
        "legal_basis": "consent",
        "dpv_term": "dpv:DirectMarketing",
        "data_use": "marketing.communications",
        "min_age": 16,
        "data_categories": ["user.device.device_id"],
        "text": (
            "With your consent we send offers and reminders as notifications to your devices, using "
            "a device identifier. You can withdraw at any time, here or in your device settings."
        ),
    },
    {
        "slug": "personalization",
        "name": "Personalization and recommendations",
        "description": "Recommendations and content chosen from what you looked at and bought.",
        "legal_basis": "consent",
        "dpv_term": "dpv:ProvidePersonalisedRecommendations",
        "data_use": "personalize.content",
        "min_age": 16,
        "data_categories": [
            "user.behavior.browsing_history",
            "user.behavior.purchase_history",
            "user.demographic.profile",
        ],
        "text": (
            "With your consent we use what you looked at and bought to recommend products and "
            "choose content for you. Without it you see the same selection as everyone else."
        ),
    },
    {
        "slug": "analytics",
        "name": "Analytics",
        "description": "Measuring how the service is used, to improve it.",
        "legal_basis": "consent",
        "dpv_term": "dpv:ServiceUsageAnalytics",
        "data_use": "analytics.reporting",
        "min_age": 16,
        "data_categories": ["user.behavior.browsing_history", "user.device.cookie_id", "user.unique_id.pseudonymous"],
        "text": (
            "With your consent we measure how you use the service, under a pseudonymous identifier, "
            "to find what works and what to improve. Reports are about groups, never about you."
        ),
    },
    {
        "slug": "advertising-partners",
        "name": "Sharing with advertising partners",
        "description": "Audience-based media buys: your data is shared with partners to show you our ads elsewhere.",
        "legal_basis": "consent",
        "dpv_term": "dpv:PersonalisedAdvertising",
        "data_use": "marketing.advertising.third_party.targeted",
        "is_sale_or_sharing": True,
        "min_age": 16,
        "data_categories": ["user.contact.email", "user.unique_id.pseudonymous", "user.behavior.purchase_history"],
        "text": (
            "With your consent we share a pseudonymous identifier and your hashed e-mail address with "
            "advertising partners, so that they can show you our ads and measure them. This is a "
            "sharing of personal data: a Global Privacy Control signal from your browser opts you out."
        ),
    },
    {
        "slug": "loyalty-programme",
        "name": "Loyalty programme",
        "description": "Points, member prices and personal offers for members.",
        "legal_basis": "consent",
        "dpv_term": "dpv:PersonalisedBenefits",
        "data_use": "marketing.advertising.first_party.targeted",
        "min_age": 16,
        "data_categories": ["user.behavior.purchase_history", "user.contact.email", "user.name"],
        "text": (
            "If you join the loyalty programme we record your purchases to give you points, member "
            "prices and offers chosen for you. You can leave at any time; your points then lapse."
        ),
    },
]


def _purpose_model(apps, schema_editor):
    """The historical Purpose model, or None when this database does not hold it (the keystore)."""
    Purpose = apps.get_model("consent", "Purpose")
    return Purpose if router.allow_migrate_model(schema_editor.connection.alias, Purpose) else None


def install(apps, schema_editor):
    Purpose = _purpose_model(apps, schema_editor)
    if Purpose is None:
        return
    PolicyVersion = apps.get_model("consent", "PolicyVersion")
    db = schema_editor.connection.alias
    now = timezone.now()
    for spec in DEFAULT_PURPOSES:
        fields = {key: value for key, value in spec.items() if key != "text"}
        purpose, created = Purpose.objects.using(db).get_or_create(slug=fields.pop("slug"), defaults=fields)
        if created:
            # Historical models lack PolicyVersion.save(), so the hash is computed here.
            PolicyVersion.objects.using(db).create(
                purpose=purpose,
                label="1",
                text=spec["text"],
                sha256=hashlib.sha256(spec["text"].encode("utf-8")).hexdigest(),
                effective_from=now,
            )


def uninstall(apps, schema_editor):
    Purpose = _purpose_model(apps, schema_editor)
    if Purpose is None:
        return
    PolicyVersion = apps.get_model("consent", "PolicyVersion")
    db = schema_editor.connection.alias
    slugs = [spec["slug"] for spec in DEFAULT_PURPOSES]
    PolicyVersion.objects.using(db).filter(purpose__slug__in=slugs).delete()
    Purpose.objects.using(db).filter(slug__in=slugs).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0001_purposes_policies_ledger"),
    ]

    operations = [
        migrations.RunPython(install, uninstall),
    ]
