"""Purposes, their versioned policy texts, the consent ledger and its projection (issue "Consent").

The ledger (`ConsentEvent`) is the record: one append-only row per act, naming the exact policy
text by its hash. `ConsentState` is a projection of it (one row per subject and purpose), kept in
step by `consent.services` in the same transaction and rebuildable from the ledger with
`manage.py consent_rebuild`. Subjects are named by their UUID without a foreign key: the ledger
must outlive account rows and is erased on its own. Evidence is kept only as a keyed hash of the
IP address and the user agent's family, never the raw values.
"""

import hashlib
import re
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from vault.models import AuditActorType

DPV_TERM = RegexValidator(r"^dpv:[A-Z][A-Za-z0-9]*$", "A W3C DPV purpose term such as dpv:DirectMarketing.")
_FIDES_KEY = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*$")
FIDES_KEY = RegexValidator(_FIDES_KEY, "A fideslang key such as marketing.communications.email.")


def validate_data_categories(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(key, str) and _FIDES_KEY.match(key) for key in value):
        raise ValidationError("A list of fideslang data categories such as user.contact.email.")


class LegalBasis(models.TextChoices):
    """GDPR Art. 6 grounds the vault distinguishes; they decide what a person's choice does."""

    CONSENT = "consent", "Consent"  # off until the person opts in
    CONTRACT = "contract", "Contract"  # always on while the account exists; no choice to record
    LEGAL_OBLIGATION = "legal_obligation", "Legal obligation"  # always on; no choice to record
    LEGITIMATE_INTEREST = "legitimate_interest", "Legitimate interest"  # on until the person objects


# Purposes on these bases take no choice from the person: consent services refuse them.
NO_CHOICE_BASES = frozenset({LegalBasis.CONTRACT, LegalBasis.LEGAL_OBLIGATION})


class Purpose(models.Model):
    """Why data is used. Its DPV term and fideslang data use let other tools read the register;
    its data categories bound which profile fields the access gate may release for it."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField()
    legal_basis = models.CharField(max_length=24, choices=LegalBasis.choices)
    dpv_term = models.CharField("DPV term", max_length=100, validators=[DPV_TERM])
    data_use = models.CharField("fideslang data use", max_length=100, validators=[FIDES_KEY])
    is_sale_or_sharing = models.BooleanField(
        default=False, help_text="A sale or sharing of personal data: Global Privacy Control opts the person out."
    )
    requires_double_opt_in = models.BooleanField(
        default=False, help_text="A grant counts only once confirmed through a second channel (e-mail)."
    )
    min_age = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Younger people need parental consent (empty: no minimum)."
    )
    data_categories = models.JSONField(
        default=list, blank=True, validators=[validate_data_categories], help_text="fideslang categories it may use."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)  # the order they were installed in, which the portal shows
        constraints = [
            models.CheckConstraint(condition=models.Q(legal_basis__in=LegalBasis.values), name="consent_purpose_basis"),
        ]

    def __str__(self) -> str:
        return self.slug


def text_sha256(text: str) -> str:
    """The content hash of a policy text: of its exact UTF-8 bytes, nothing normalized."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PolicyVersion(models.Model):
    """One published (or scheduled) text of a purpose's policy. The version in force is the one
    with the latest `effective_from` not in the future; a material one makes earlier grants stop
    counting from that moment. Published with `consent.services.policy_version_publish`."""

    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="versions")
    label = models.CharField(max_length=32)
    text = models.TextField()
    sha256 = models.CharField("SHA-256", max_length=64, editable=False)
    effective_from = models.DateTimeField()
    is_material = models.BooleanField(default=False, help_text="Earlier grants need renewing once it takes effect.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("purpose", "effective_from")
        constraints = [
            models.UniqueConstraint(fields=("purpose", "label"), name="consent_policyversion_label"),
            # Also the index of "the version in force" and "the latest material version" lookups.
            models.UniqueConstraint(fields=("purpose", "effective_from"), name="consent_policyversion_effective"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose.slug}/{self.label}"  # list pages select_related the purpose

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.sha256 = text_sha256(self.text)
        super().save(*args, **kwargs)


class PolicyDraft(models.Model):
    """A policy text being written: editable until it is published, when it becomes a
    `PolicyVersion` (immutable) through `consent.services.policy_draft_publish` and stays here,
    read-only, pointing at what it became."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="drafts")
    label = models.CharField(max_length=32)
    text = models.TextField()
    effective_from = models.DateTimeField(null=True, blank=True, help_text="Empty: in force from publication.")
    is_material = models.BooleanField(default=False, help_text="Earlier grants need renewing once it takes effect.")
    created_by = models.CharField(max_length=64, blank=True, help_text="Actor id (a staff id), never a name.")
    published = models.OneToOneField(
        PolicyVersion, on_delete=models.SET_NULL, null=True, blank=True, editable=False, related_name="draft"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.purpose.slug}/{self.label} (draft)"

    @property
    def is_published(self) -> bool:
        return self.published_id is not None


class EventType(models.TextChoices):
    REQUEST = "request", "Request"  # asked for, awaiting confirmation (double opt-in, a parent)
    GRANT = "grant", "Grant"
    RENEW = "renew", "Renew"  # a grant given while one stood (e.g. after a material change)
    WITHDRAW = "withdraw", "Withdraw"
    REFUSE = "refuse", "Refuse"
    EXPIRE = "expire", "Expire"


class Method(models.TextChoices):
    """How the choice was collected."""

    WEB_FORM = "web_form", "Web form"
    API = "api", "API"
    GPC = "gpc", "Global Privacy Control"
    DOUBLE_OPT_IN = "double_opt_in", "Double opt-in confirmation"
    IMPORT = "import", "Import"
    PARENTAL_CONSENT = "parental_consent", "Parental consent"


class ConsentStatus(models.TextChoices):
    """A person's standing for one purpose. The first five are stored in the projection; the
    rest are derived by the selectors (no row, a material change, a basis without choice)."""

    GRANTED = "granted", "Granted"
    WITHDRAWN = "withdrawn", "Withdrawn"
    REFUSED = "refused", "Refused"
    EXPIRED = "expired", "Expired"
    PENDING = "pending", "Pending confirmation"  # double opt-in asked, not yet confirmed
    NOT_GIVEN = "not_given", "Not given"
    NEEDS_RENEWAL = "needs_renewal", "Needs renewal"
    NOT_APPLICABLE = "not_applicable", "Not applicable (always on for its legal basis)"


STORED_STATUSES = (
    ConsentStatus.GRANTED,
    ConsentStatus.WITHDRAWN,
    ConsentStatus.REFUSED,
    ConsentStatus.EXPIRED,
    ConsentStatus.PENDING,
)

# What each event leaves the projection at: the one rule shared by the services and the rebuild.
STATUS_AFTER: dict[str, ConsentStatus] = {
    EventType.REQUEST: ConsentStatus.PENDING,
    EventType.GRANT: ConsentStatus.GRANTED,
    EventType.RENEW: ConsentStatus.GRANTED,
    EventType.WITHDRAW: ConsentStatus.WITHDRAWN,
    EventType.REFUSE: ConsentStatus.REFUSED,
    EventType.EXPIRE: ConsentStatus.EXPIRED,
}


class ConsentEvent(models.Model):
    """One act in the ledger. Append-only: never updated (a PostgreSQL trigger refuses it);
    deleted only when the subject's ledger is erased. `seq` numbers a subject's events for one
    purpose, so replaying them needs no clock and a lost race would fail on the constraint."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject_id = models.UUIDField()
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="events")
    seq = models.PositiveIntegerField()
    event_type = models.CharField(max_length=16, choices=EventType.choices)
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="events")
    method = models.CharField(max_length=24, choices=Method.choices)
    actor_type = models.CharField(max_length=16, choices=AuditActorType.choices)
    occurred_at = models.DateTimeField(db_index=True)
    jurisdiction = models.CharField(max_length=6, blank=True, help_text="ISO 3166 code (country or subdivision).")
    ip_hash = models.CharField("IP address (keyed hash)", max_length=32, blank=True)
    ua_family = models.CharField("browser family", max_length=16, blank=True)

    class Meta:
        ordering = ("occurred_at", "seq")
        constraints = [
            # Also the index of the rebuild's replay order and of a subject's history.
            models.UniqueConstraint(fields=("subject_id", "purpose", "seq"), name="consent_event_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.purpose_id} #{self.seq}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("Consent events are append-only; record a new event instead.")
        super().save(*args, **kwargs)


class ConsentState(models.Model):
    """The projection: where a subject stands for a purpose after their latest event. Only the
    services (in the event's transaction) and `consent_rebuild` write it. The row is also the
    lock that serializes one person's choices for one purpose."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject_id = models.UUIDField()
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="states")
    status = models.CharField(max_length=16, choices=ConsentStatus.choices)
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="+")
    last_seq = models.PositiveIntegerField(default=0)
    changed_at = models.DateTimeField()

    class Meta:
        ordering = ("subject_id", "purpose")
        constraints = [
            # The hot-path checks look rows up by exactly these two columns.
            models.UniqueConstraint(fields=("subject_id", "purpose"), name="consent_state_subject_purpose"),
            models.CheckConstraint(condition=models.Q(status__in=STORED_STATUSES), name="consent_state_stored_status"),
        ]

    def __str__(self) -> str:
        return f"{self.subject_id}/{self.purpose_id}: {self.status}"
