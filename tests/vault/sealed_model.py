"""A model with sealed fields, for testing the field layer before the profile models exist.

Not in any migration: the `sealed_table` fixture creates its table once per test session.
"""

import uuid

from django.db import models

from vault.fields import SealedField
from vault.models import DataClass


class SealedThing(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    subject_id = models.UUIDField()
    value = SealedField(subject_field="subject_id", data_class=DataClass.PROFILE, null=True)
    other = SealedField(subject_field="subject_id", data_class=DataClass.PROFILE, null=True)
    email_index = models.CharField(max_length=64, blank=True, db_index=True)

    class Meta:
        app_label = "vault"
        db_table = "test_sealed_thing"
        managed = False

    def __str__(self) -> str:
        return str(self.id)


class SealedThingElsewhere(models.Model):
    """The same table seen as another model: its values are bound to another context name."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    subject_id = models.UUIDField()
    value = SealedField(subject_field="subject_id", data_class=DataClass.PROFILE, null=True)

    class Meta:
        app_label = "vault"
        db_table = "test_sealed_thing"
        managed = False

    def __str__(self) -> str:
        return str(self.id)
