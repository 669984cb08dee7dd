import uuid

from django.db import models
from django.utils import timezone


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


# --- Audit log (vault/audit/ writes and verifies it; docs/audit.md) -----------------------------

AUDIT_GENESIS_HASH = "0" * 64


class AuditActorType(models.TextChoices):
    PERSON = "person", "Person"
    STAFF = "staff", "Staff member"
    PARTNER = "partner", "Partner client"
    SYSTEM = "system", "System"


class AuditEntry(models.Model):
    """One event of the hash chain. Append-only (a PostgreSQL trigger refuses UPDATE, DELETE and
    TRUNCATE); written only by `vault.audit.audit_record`. Holds field names, never values."""

    # The chain position is the identity: a second key would only be one more thing to forge.
    seq = models.BigIntegerField(primary_key=True)
    created_at = models.DateTimeField()
    actor_type = models.CharField(max_length=16, choices=AuditActorType.choices)
    actor_id = models.CharField(max_length=128)
    action = models.CharField(max_length=64)
    purpose = models.CharField(max_length=64, blank=True)
    fields = models.JSONField(default=list, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    subject_pseudonym = models.UUIDField(null=True, blank=True, db_index=True)
    details = models.BinaryField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    # A batch entry (one event about many people, `audit_record_batch`) names them in
    # `AuditEntrySubject` rows; this SHA-256 of their pseudonyms is hashed into the chain, so a
    # row removed, added or changed there is found by `audit_verify`. "" for other entries.
    subjects_digest = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ("seq",)
        verbose_name_plural = "audit entries"
        constraints = [models.CheckConstraint(condition=models.Q(seq__gte=1), name="vault_auditentry_seq_from_1")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action}"


class AuditEntrySubject(models.Model):
    """One person a batch entry is about, by audit pseudonym (as an entry names one), so erasure
    unlinking the pseudonym leaves these rows anonymous and the chain verifiable. Append-only
    like the entries. No foreign key: the chain is the integrity check (the entry's
    `subjects_digest`), and the entries' table stays as it was."""

    pk = models.CompositePrimaryKey("entry_seq", "subject_pseudonym")
    entry_seq = models.BigIntegerField()
    subject_pseudonym = models.UUIDField(db_index=True)

    class Meta:
        ordering = ("entry_seq", "subject_pseudonym")

    def __str__(self) -> str:
        return f"#{self.entry_seq} {self.subject_pseudonym}"


class AuditPseudonym(models.Model):
    """The only link from a subject to the pseudonym their audit entries carry. Deleted at
    erasure: the chain stays verifiable but no longer says whom it was about."""

    pseudonym = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject_id = models.UUIDField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at",)

    def __str__(self) -> str:
        return str(self.pseudonym)


class AuditHead(models.Model):
    """The chain's single head row: appends lock it, so they are numbered one at a time."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=AUDIT_GENESIS_HASH)

    class Meta:
        ordering = ("id",)
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="vault_audithead_single_row")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.hash}"


class AuditCheckpoint(models.Model):
    """A signed (seq, hash) of the chain. A copy kept elsewhere proves later that the log up to
    `seq` was not rewritten, even by someone able to recompute every hash. Append-only."""

    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    key_fingerprint = models.CharField(max_length=64)  # its JWK thumbprint; older ones: hex SHA-256 of the raw key
    signature = models.BinaryField()

    class Meta:
        ordering = ("seq", "signed_at")

    def __str__(self) -> str:
        return f"#{self.seq} {self.hash} signed {self.signed_at:%Y-%m-%d %H:%M}"


# --- Outbox of domain events (vault/outbox.py) --------------------------------------------------


class OutboxEvent(models.Model):
    """A domain event for the apps above the core (an erasure, for the partners app to pass on),
    written in the same transaction as the change it announces, so the two commit or roll back
    together. The payload holds opaque ids only. A consumer claims events for a while
    (`claim_token`, `claimed_until`), delivers them, then marks them delivered."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    topic = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("created_at", "id")
        indexes = [
            models.Index(
                fields=("topic", "created_at"),
                condition=models.Q(delivered_at__isnull=True),
                name="vault_outbox_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.topic} {self.id}"
