"""Dynamic-schema encrypted profiles, documents, events and retention (issue "Profiles").

Staff define the schema at run time (`FieldDefinition`); every value, document and event is
ciphertext under its person's data key, written and read only through `profiles.gate`. Rows name
their person by `subject_id` (the account's UUID) rather than a foreign key, like the consent
ledger, so erasure and merging work on ids and a profile can exist before an account does.
"""

import uuid
from datetime import datetime
from typing import ClassVar

from django.db import models
from django.utils.translation import gettext_lazy as _

from consent.models import LegalBasis, Purpose
from vault.fields import SealedField
from vault.models import DataClass

PROFILE = DataClass.PROFILE  # values and documents
EVENTS = DataClass.EVENTS  # the event stream has its own key, so a retention rule can shred it alone


class FieldType(models.TextChoices):
    TEXT = "text", _("Text")
    EMAIL = "email", _("Email address")
    PHONE = "phone", _("Phone number")
    DATE = "date", _("Date")
    INTEGER = "integer", _("Integer")
    DECIMAL = "decimal", _("Decimal")
    BOOLEAN = "boolean", _("Yes / no")
    CHOICE = "choice", _("One of a list")
    MULTI_CHOICE = "multi_choice", _("Several of a list")
    COUNTRY = "country", _("Country")
    URL = "url", _("Web address")
    JSON = "json", _("JSON document")


class Category(models.TextChoices):
    IDENTITY = "identity", _("Identity")
    CONTACT = "contact", _("Contact")
    DEMOGRAPHIC = "demographic", _("Demographic")
    SOCIAL = "social", _("Social")
    TRANSACTIONAL = "transactional", _("Transactional")
    BEHAVIORAL = "behavioral", _("Behavioral")
    PREFERENCE = "preference", _("Preference")


class Source(models.TextChoices):
    """Where a value came from. `source_name` says which provider, partner client or import."""

    REGISTRATION = "registration", _("Registration")
    SELF_SERVICE = "self_service", _("The person, in the portal or app")
    SOCIAL = "social", _("Social login provider")
    PARTNER = "partner", _("Partner client")
    IMPORT = "import", _("Import")
    STAFF = "staff", _("Staff")


class FieldDefinition(models.Model):
    """One profile field, defined by staff at run time. Edited only through
    `profiles.services.field_definition_save`, which keeps the version history; a removed field is
    deprecated (no new values) and its stored values live out their retention."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    key = models.SlugField(
        max_length=64, unique=True, help_text=_("Stable identifier used by the API (lower case, digits, _).")
    )
    label = models.CharField(max_length=120)
    help_text = models.CharField(max_length=300, blank=True)
    field_type = models.CharField(max_length=16, choices=FieldType.choices)
    choices = models.JSONField(default=list, blank=True, help_text=_("Allowed values for choice fields."))
    category = models.CharField(max_length=16, choices=Category.choices)
    is_special_category = models.BooleanField(
        default=False, help_text=_("GDPR Art. 9 data (health, beliefs, ...): never searchable, never sent to partners.")
    )
    purposes = models.ManyToManyField(
        Purpose, related_name="profile_fields", blank=True, help_text=_("Purposes that may use this field.")
    )
    searchable = models.BooleanField(default=False, help_text=_("Keep a blind index for equality lookups."))
    index_bits = models.PositiveSmallIntegerField(
        default=32, help_text=_("Bits of the blind index kept (fewer bits: more collisions, less leakage).")
    )
    retention_days = models.PositiveIntegerField(help_text=_("Values are deleted this long after collection."))
    allowed_sources = models.JSONField(default=list, help_text=_("Sources that may set this field."))
    max_length = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Longest value accepted (characters); blank: the vault's maximum.")
    )
    person_can_view = models.BooleanField(default=True, help_text=_("Shown to the person in the portal and API."))
    person_can_edit = models.BooleanField(default=True, help_text=_("The person may rectify it themselves."))
    version = models.PositiveIntegerField(default=1, editable=False)
    deprecated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("category", "key")
        constraints = [
            models.CheckConstraint(condition=models.Q(field_type__in=FieldType.values), name="profiles_field_type"),
            models.CheckConstraint(condition=models.Q(category__in=Category.values), name="profiles_field_category"),
            models.CheckConstraint(
                condition=models.Q(index_bits__gte=8, index_bits__lte=256), name="profiles_field_index_bits"
            ),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def is_deprecated(self) -> bool:
        return self.deprecated_at is not None


class FieldDefinitionVersion(models.Model):
    """A snapshot of a field definition as it was after each change: who changed what, when."""

    definition = models.ForeignKey(FieldDefinition, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    snapshot = models.JSONField()
    changed_by = models.CharField(max_length=64, blank=True, help_text=_("Actor id (a staff UUID), never a name."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("definition", "version")
        constraints = [
            models.UniqueConstraint(fields=("definition", "version"), name="profiles_fieldversion_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.definition_id} v{self.version}"


class Provenance(models.Model):
    """Where a piece of personal data came from, under which basis, and until when it is kept;
    and which of the row's fields holds the data, sealed (`sealed_field_name`, named once per
    model: the gate decrypts it and identity resolution moves it)."""

    sealed_field_name: ClassVar[str]

    source = models.CharField(max_length=16, choices=Source.choices)
    source_name = models.CharField(
        max_length=64, blank=True, help_text=_("Provider, partner client or import batch, if any.")
    )
    legal_basis = models.CharField(max_length=24, choices=LegalBasis.choices)
    collected_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True, help_text=_("Deleted by the retention run after this."))

    class Meta:
        abstract = True

    @classmethod
    def sealed_field(cls) -> SealedField:
        """The model field named by `sealed_field_name`."""
        field = cls._meta.get_field(cls.sealed_field_name)
        assert isinstance(field, SealedField)
        return field


class ProfileValue(Provenance):
    """The current value of one field for one person."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject_id = models.UUIDField()
    definition = models.ForeignKey(FieldDefinition, on_delete=models.PROTECT, related_name="values")
    value = SealedField(subject_field="subject_id", data_class=PROFILE)
    sealed_field_name = "value"
    blind_index = models.CharField(max_length=64, blank=True, help_text=_("Keyed hash for lookups; empty if none."))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("subject_id", "definition")
        constraints = [
            models.UniqueConstraint(fields=("subject_id", "definition"), name="profiles_value_one_per_field"),
        ]
        indexes = [
            models.Index(
                fields=("definition", "blind_index"),
                condition=~models.Q(blind_index=""),
                name="profiles_value_lookup",
            ),
            # The partners' changes feed pages through values by (updated_at, id).
            models.Index(fields=("updated_at", "id"), name="profiles_value_changed"),
        ]

    def __str__(self) -> str:
        return f"{self.definition_id} of {self.subject_id}"


_MOVED = (
    "id",
    "subject_id",
    "definition_id",
    "value",
    "source",
    "source_name",
    "legal_basis",
    "collected_at",
    "expires_at",
)


class ProfileValueHistory(Provenance):
    """An earlier value, kept (encrypted) when a value is rectified, until its own retention ends."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject_id = models.UUIDField(db_index=True)
    definition = models.ForeignKey(FieldDefinition, on_delete=models.PROTECT, related_name="history")
    # The same context as the current value's, and the same row id: a rectified value's
    # ciphertext moves here as it is, without being decrypted.
    value = SealedField(subject_field="subject_id", data_class=PROFILE, context_name="profiles.profilevalue.value")
    sealed_field_name = "value"
    replaced_at = models.DateTimeField()

    class Meta:
        ordering = ("subject_id", "definition", "-replaced_at")
        verbose_name_plural = "profile value history"
        # The partners' changes feed pages through replaced and removed values by (replaced_at, id).
        indexes = [models.Index(fields=("replaced_at", "id"), name="profiles_history_changed")]

    def __str__(self) -> str:
        return f"{self.definition_id} of {self.subject_id} until {self.replaced_at:%Y-%m-%d}"

    @classmethod
    def of(cls, value: ProfileValue, *, replaced_at: datetime) -> "ProfileValueHistory":
        """`value` as an earlier value: same id and ciphertext (the history's field binds the
        ciphertext to the same context as the value's, so nothing is decrypted to keep it)."""
        return cls(replaced_at=replaced_at, **{name: getattr(value, name) for name in _MOVED})

    def as_value(self) -> ProfileValue:
        """This earlier value made current again (a merge undone), same id and ciphertext."""
        return ProfileValue(**{name: getattr(self, name) for name in _MOVED})


class Shape(models.TextChoices):
    DOCUMENT = "document", _("Document (one per person and source, replaced on update)")
    EVENT = "event", _("Event (a stream, appended)")


class RecordKind(models.Model):
    """A kind of document or event (an order, a product view, a social profile): the purpose its
    processing needs, and how long it is kept. Events of a kind whose purpose the person has not
    granted are refused at ingestion."""

    Shape = Shape

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    shape = models.CharField(max_length=16, choices=Shape.choices)
    category = models.CharField(max_length=16, choices=Category.choices)
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="record_kinds")
    retention_days = models.PositiveIntegerField()
    allowed_sources = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("shape", "slug")
        constraints = [
            models.CheckConstraint(condition=models.Q(shape__in=Shape.values), name="profiles_kind_shape"),
        ]

    def __str__(self) -> str:
        return self.slug


class ProfileDocument(Provenance):
    """An unstructured JSON document about a person (a social profile), one per kind and source."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject_id = models.UUIDField()
    kind = models.ForeignKey(RecordKind, on_delete=models.PROTECT, related_name="documents")
    body = SealedField(subject_field="subject_id", data_class=PROFILE)
    sealed_field_name = "body"
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("subject_id", "kind", "source_name")
        constraints = [
            models.UniqueConstraint(fields=("subject_id", "kind", "source_name"), name="profiles_document_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind_id} of {self.subject_id}"


class ProfileEvent(Provenance):
    """One transactional or behavioral event (an order, a page view)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject_id = models.UUIDField()
    kind = models.ForeignKey(RecordKind, on_delete=models.PROTECT, related_name="events")
    occurred_at = models.DateTimeField()
    payload = SealedField(subject_field="subject_id", data_class=EVENTS)
    sealed_field_name = "payload"
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("subject_id", "-occurred_at")
        indexes = [models.Index(fields=("subject_id", "-occurred_at"), name="profiles_event_timeline")]

    def __str__(self) -> str:
        return f"{self.kind_id} of {self.subject_id}"


class Restriction(models.Model):
    """Processing restricted for a person (GDPR Art. 18): while present, the gate releases their
    data only for the person's own rights and legal obligations. Set by the rights services."""

    subject_id = models.UUIDField(primary_key=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at",)

    def __str__(self) -> str:
        return f"restricted {self.subject_id}"


class Merge(models.Model):
    """Two profiles merged into one (identity resolution). Reversible until `undo_until`: the
    merged person's rows are moved, re-encrypted, and their ids recorded here (ids only)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    survivor_id = models.UUIDField(db_index=True)
    merged_id = models.UUIDField(db_index=True)
    reason = models.CharField(max_length=24)
    moved = models.JSONField(default=dict, help_text=_("Ids of the rows moved, per model: what an undo moves back."))
    replaced = models.JSONField(default=list, help_text=_("Ids of the survivor's history rows created by the merge."))
    undo_until = models.DateTimeField()
    undone_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.merged_id} into {self.survivor_id}"
