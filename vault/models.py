import uuid

from django.db import models


class DataClass(models.TextChoices):
    """Each subject has one data key per class, so a retention rule can shred one class alone."""

    PROFILE = "profile", "Profile values"
    TOKENS = "tokens", "Social tokens and provider data"
    EVENTS = "events", "Transactional and behavioral events"
    AUDIT = "audit", "Audit details"


class DataKey(models.Model):
    """A subject's data key, stored only wrapped by a KEK. Lives in the `keystore` database
    when one is configured (vault.routers). Deleting the row is erasing the subject's data."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject_id = models.UUIDField()
    data_class = models.CharField(max_length=16, choices=DataClass.choices)
    version = models.PositiveIntegerField(default=1)
    kek_id = models.CharField(max_length=64, db_index=True)
    wrapped = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("subject_id", "data_class", "version")
        constraints = [
            models.UniqueConstraint(fields=("subject_id", "data_class", "version"), name="vault_datakey_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.subject_id}/{self.data_class}/v{self.version}"


class ErasedSubject(models.Model):
    """Remembers that a subject's keys were destroyed, so reads fail as `SubjectErased` and no
    new key is ever made for them. Holds only the opaque id."""

    subject_id = models.UUIDField(primary_key=True)
    erased_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("erased_at",)

    def __str__(self) -> str:
        return str(self.subject_id)
