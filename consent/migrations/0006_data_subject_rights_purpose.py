"""Installs the purpose under which people exercise their own rights (access, export,
rectification): the access gate releases every field for it, to the person themselves."""

import hashlib

from django.db import migrations, router
from django.utils import timezone

SLUG = "data-subject-rights"
TEXT = (
    "When you ask to see, download, correct or restrict your data, we read it to answer you. "
    "The law requires us to answer such requests, so this does not depend on consent."
)


def install(apps, schema_editor):
    Purpose = apps.get_model("consent", "Purpose")
    if not router.allow_migrate_model(schema_editor.connection.alias, Purpose):
        return
    PolicyVersion = apps.get_model("consent", "PolicyVersion")
    db = schema_editor.connection.alias
    purpose, created = Purpose.objects.using(db).get_or_create(
        slug=SLUG,
        defaults={
            "name": "Your data protection rights",
            "description": "Answering your requests to access, export, correct or restrict your data.",
            "legal_basis": "legal_obligation",
            "dpv_term": "dpv:LegalCompliance",
            "data_use": "essential.service",
            "data_categories": ["user"],
        },
    )
    if created:
        PolicyVersion.objects.using(db).create(
            purpose=purpose,
            label="1",
            text=TEXT,
            sha256=hashlib.sha256(TEXT.encode("utf-8")).hexdigest(),
            effective_from=timezone.now(),
        )


def uninstall(apps, schema_editor):
    Purpose = apps.get_model("consent", "Purpose")
    if not router.allow_migrate_model(schema_editor.connection.alias, Purpose):
        return
    db = schema_editor.connection.alias
    apps.get_model("consent", "PolicyVersion").objects.using(db).filter(purpose__slug=SLUG).delete()
    Purpose.objects.using(db).filter(slug=SLUG).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0005_policy_text_immutable_trigger"),
    ]

    operations = [
        migrations.RunPython(install, uninstall),
    ]
