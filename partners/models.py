"""Partner clients, their credentials, and the pairwise ids under which each sees people.

A client names the purposes it may use and the profile fields it may read (its scopes) by slug
and key, so a purpose or field added later is never granted by accident. Credentials are API
keys hashed at rest (djangorestframework-api-key's SHA-512 hasher): shown once, several at once
for rotation, each revocable. The webhook signing secret must be read back to sign, so it is
sealed under the KEK (a standalone envelope), never stored in plaintext.
"""

import uuid

from django.db import models
from django.db.models import QuerySet
from rest_framework_api_key.models import AbstractAPIKey, APIKeyManager


class PartnerClient(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=64, unique=True, help_text="Stable name, used in audit entries.")
    name = models.CharField(max_length=120)
    purposes = models.JSONField(default=list, help_text="Slugs of the purposes this client may use.")
    fields = models.JSONField(default=list, help_text="Keys of the profile fields this client may read.")
    record_kinds = models.JSONField(default=list, blank=True, help_text="Slugs of the event kinds it may post.")
    rate_limit = models.CharField(
        max_length=32, default="600/min", help_text="Requests per second, minute or hour: 100/s, 600/min."
    )
    ip_allowlist = models.JSONField(default=list, blank=True, help_text="CIDR ranges; empty allows any address.")
    webhook_url = models.URLField(blank=True, max_length=500)
    webhook_secret = models.JSONField(null=True, blank=True, editable=False, help_text="Sealed (standalone envelope).")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("slug",)

    def __str__(self) -> str:
        return self.slug


class PartnerCredentialManager(APIKeyManager):
    def get_usable_keys(self) -> QuerySet["PartnerCredential"]:
        return super().get_usable_keys().select_related("client")


class PartnerCredential(AbstractAPIKey):
    """One API key of a client. The key is `prefix.secret`; only the prefix and a hash are kept."""

    objects: PartnerCredentialManager = PartnerCredentialManager()  # type: ignore[misc]

    client = models.ForeignKey(PartnerClient, on_delete=models.CASCADE, related_name="credentials")
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "partner credential"
        verbose_name_plural = "partner credentials"


class PairwiseId(models.Model):
    """The id a client sees a person under, kept so it can be mapped back. The id itself is
    derived (HMAC under a per-client key), so two clients' ids cannot be joined, and the same
    person always gets the same id from the same client."""

    id = models.BigAutoField(primary_key=True)
    client = models.ForeignKey(PartnerClient, on_delete=models.CASCADE, related_name="pairwise_ids")
    pairwise = models.CharField(max_length=32)
    subject_id = models.UUIDField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("client", "pairwise")
        constraints = [
            models.UniqueConstraint(fields=("client", "pairwise"), name="partners_pairwise_unique"),
            models.UniqueConstraint(fields=("client", "subject_id"), name="partners_pairwise_one_per_subject"),
        ]

    def __str__(self) -> str:
        return self.pairwise


# --- Webhooks (partners/services/webhooks.py) ----------------------------------------------------


class WebhookEventType(models.TextChoices):
    CONSENT_CHANGED = "consent.changed"
    PROFILE_UPDATED = "profile.updated"
    SUBJECT_ERASED = "subject.erased"
    NOTIFICATION_REQUESTED = "notification.requested"


class WebhookStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """One webhook to one client, and the log of its delivery. The id is the Standard Webhooks
    `webhook-id` (`msg_<hex>`), the same on every attempt and replay so a receiver can ignore a
    message it already handled. The payload names people by the client's pairwise ids only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(PartnerClient, on_delete=models.CASCADE, related_name="webhook_deliveries")
    event_id = models.UUIDField(help_text="The outbox event or trigger batch it announces.")
    event_type = models.CharField(max_length=32, choices=WebhookEventType.choices)
    payload = models.JSONField(default=dict, help_text="The `data` object: pairwise ids, names, no values.")
    status = models.CharField(max_length=12, choices=WebhookStatus.choices, default=WebhookStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=32, blank=True, help_text="timeout, connection, http_503...")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        verbose_name_plural = "webhook deliveries"
        constraints = [
            # The outbox delivers at least once: fanning the same event out twice adds nothing.
            models.UniqueConstraint(fields=("client", "event_id", "event_type"), name="partners_webhook_once"),
        ]
        indexes = [
            models.Index(
                fields=("next_attempt_at",),
                condition=models.Q(status="pending"),
                name="partners_webhook_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to {self.client_id} ({self.status})"

    @property
    def message_id(self) -> str:
        return f"msg_{self.id.hex}"


# --- Preference index for triggers (partners/services/triggers.py) -------------------------------


class PreferenceToken(models.Model):
    """A person's (favourite brand, size) pair as a keyed hash: the trigger path finds who
    matches a catalog event without decrypting anyone. What a database reader learns from it is
    in docs/partners.md ("Triggers"). Rebuilt from the gate on profile and consent changes."""

    id = models.BigAutoField(primary_key=True)
    token = models.CharField(max_length=64)
    subject_id = models.UUIDField(db_index=True)

    class Meta:
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(fields=("token", "subject_id"), name="partners_preference_once"),
        ]

    def __str__(self) -> str:
        return self.token


class IngestionRequest(models.Model):
    """An event ingestion answered under an `Idempotency-Key`: a retry with the same key gets
    this answer again instead of storing the events twice. The key and the request body are kept
    as keyed hashes only (the body holds personal data); the answer holds counts and item
    indexes, never a person's id or a value. Deleted after `expires_at`."""

    id = models.BigAutoField(primary_key=True)
    client = models.ForeignKey(PartnerClient, on_delete=models.CASCADE, related_name="ingestion_requests")
    key_hash = models.CharField(max_length=64)
    body_hash = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=("client", "key_hash"), name="partners_ingestion_key_unique"),
        ]

    def __str__(self) -> str:
        return f"ingestion {self.pk} of {self.client_id}"


class SegmentStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a worker"
    RUNNING = "running", "Being computed"
    READY = "ready", "Computed"
    FAILED = "failed", "Failed"


class Segment(models.Model):
    """A client's audience definition, and the state of the job that computes its members inside
    the vault (batch decryption through the gate; see partners/services/segments.py). The
    definition names criteria (field keys, purposes, kinds), never a person."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(PartnerClient, on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=120)
    purpose = models.CharField(max_length=64, help_text="The purpose its members are computed and exported for.")
    definition = models.JSONField()
    status = models.CharField(max_length=16, choices=SegmentStatus.choices, default=SegmentStatus.PENDING)
    # The computation in hand: a refresh starts a new run, which supersedes the one before.
    run = models.UUIDField(default=uuid.uuid4, editable=False)
    generation = models.UUIDField(null=True, blank=True, editable=False, help_text="The run whose members stand.")
    cursor = models.UUIDField(null=True, blank=True, editable=False, help_text="The last subject id examined.")
    examined = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0, help_text="People to examine, counted when the run started.")
    count = models.PositiveIntegerField(null=True, blank=True, help_text="Members of the standing generation.")
    computed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="When the standing members expire.")
    error = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("client", "-created_at")

    def __str__(self) -> str:
        return f"{self.client_id}/{self.pk}"


class SegmentMember(models.Model):
    """One member of one computation of a segment, by the client's pairwise id (never a subject
    id), until `expires_at`."""

    id = models.BigAutoField(primary_key=True)
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members")
    generation = models.UUIDField()
    person = models.ForeignKey(PairwiseId, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ("segment", "id")
        constraints = [
            models.UniqueConstraint(fields=("segment", "generation", "person"), name="partners_member_once"),
        ]

    def __str__(self) -> str:
        return f"{self.segment_id} #{self.pk}"


class SegmentExport(models.Model):
    """The export log: one row per page of an audience export, with its size. Each person
    exported also gets an audit entry of their own (their "who accessed my data"), under the
    same request id."""

    id = models.BigAutoField(primary_key=True)
    segment = models.ForeignKey(Segment, on_delete=models.SET_NULL, null=True, related_name="exports")
    client = models.ForeignKey(PartnerClient, on_delete=models.CASCADE, related_name="exports")
    purpose = models.CharField(max_length=64)
    fields = models.JSONField(default=list)
    format = models.CharField(max_length=8)
    rows = models.PositiveIntegerField(default=0)
    bytes = models.PositiveBigIntegerField(default=0)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"export {self.pk} of {self.segment_id}: {self.rows} rows"
