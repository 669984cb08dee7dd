"""Policy drafts: texts staff write and edit before publishing them as a PolicyVersion."""

import django.db.models.deletion
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0006_data_subject_rights_purpose"),
    ]

    operations = [
        migrations.CreateModel(
            name="PolicyDraft",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("label", models.CharField(max_length=32)),
                ("text", models.TextField()),
                (
                    "effective_from",
                    models.DateTimeField(blank=True, help_text="Empty: in force from publication.", null=True),
                ),
                (
                    "is_material",
                    models.BooleanField(default=False, help_text="Earlier grants need renewing once it takes effect."),
                ),
                (
                    "created_by",
                    models.CharField(blank=True, help_text="Actor id (a staff id), never a name.", max_length=64),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "published",
                    models.OneToOneField(
                        blank=True,
                        editable=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="draft",
                        to="consent.policyversion",
                    ),
                ),
                (
                    "purpose",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="drafts", to="consent.purpose"
                    ),
                ),
            ],
            options={
                "ordering": ("-created_at",),
            },
        ),
    ]
