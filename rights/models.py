"""Data-subject requests and the export bundles they produce.

A request names its person by `subject_id` (the account's UUID), like every personal row: no
foreign key, so the account can go first at erasure. What a request carries that could be
personal (a rectified value, a staff member's note on how someone was verified) is sealed under
the person's data key in `details`; the reasons shown to the person (an extension, a rejection)
are written by staff for the person to read and hold no personal data by rule (the admin says so).
"""

import uuid
from datetime import datetime

from django.db import models
from django.db.models import Q

from vault.fields import SealedField
from vault.models import DataClass


class Kind(models.TextChoices):
    ACCESS = "access", "Access (a copy of your data)"
    EXPORT = "export", "Export (machine-readable, to take elsewhere)"
    ERASURE = "erasure", "Erasure"
    RECTIFICATION = "rectification", "Rectification"
    RESTRICTION = "restriction", "Restriction of processing"
    OBJECTION = "objection", "Objection"


class Status(models.TextChoices):
    RECEIVED = "received", "Received"
    VERIFIED = "verified", "Verified"
    IN_PROGRESS = "in_progress", "In progress"
    EXTENDED = "extended", "Extended"
    COMPLETED = "completed", "Completed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATUSES = (Status.RECEIVED, Status.VERIFIED, Status.IN_PROGRESS, Status.EXTENDED)


class Verification(models.TextChoices):
    """How the person was verified (GDPR Art. 12(6)): a recent re-authentication, stepped up
    with their second factor when they have one; or staff, for a request received offline. A
    request that only lessens processing (restriction, objection) needs no more than the
    signed-in session: stopping use of data must be as easy as allowing it."""

    REAUTHENTICATION = "reauthentication", "Re-authenticated"
    REAUTHENTICATION_MFA = "reauthentication_mfa", "Re-authenticated with a second factor"
    SESSION = "session", "Signed in"
    STAFF = "staff", "Verified by staff"
    PROVIDER = "provider", "Signed by the sign-in provider (its data deletion callback)"


class Channel(models.TextChoices):
    PORTAL = "portal", "Portal"
    API = "api", "API"
    OFFLINE = "offline", "Received offline (mail, phone, letter)"
    PROVIDER = "provider", "From a sign-in provider (Meta's data deletion callback)"


class RightsRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject_id = models.UUIDField(db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    received_at = models.DateTimeField()
    due_at = models.DateTimeField(help_text="One month after receipt (GDPR Art. 12(3)).")
    extended_due_at = models.DateTimeField(null=True, blank=True, help_text="Up to two more months, with a reason.")
    extension_reason = models.TextField(blank=True, help_text="Shown to the person. No personal data.")
    rejection_reason = models.TextField(blank=True, help_text="Shown to the person. No personal data.")
    verification = models.CharField(max_length=24, choices=Verification.choices, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.CharField(max_length=64, blank=True, help_text="Staff actor id, never a name.")
    # Erasure: when it runs unless cancelled, and a staff hold that pauses it.
    grace_ends_at = models.DateTimeField(null=True, blank=True)
    legal_hold = models.BooleanField(default=False)
    legal_hold_reason = models.TextField(blank=True, help_text="Why erasure waits. No personal data.")
    # Objection: the purposes objected to (slugs). Progress of a job (export), 0 to 100.
    purposes = models.JSONField(default=list, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    details = SealedField(subject_field="subject_id", data_class=DataClass.PROFILE, null=True, blank=True)
    verification_note = SealedField(subject_field="subject_id", data_class=DataClass.PROFILE, null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-received_at",)
        permissions = [("handle_rightsrequest", "Can act on data-subject requests (verify, extend, reject, complete)")]
        constraints = [
            # One erasure at a time per person: a second one while one is open is refused.
            models.UniqueConstraint(
                fields=("subject_id",),
                condition=Q(kind="erasure", status__in=["received", "verified", "in_progress", "extended"]),
                name="rights_one_open_erasure",
            ),
        ]
        indexes = [models.Index(fields=("status", "due_at"), name="rights_queue")]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def deadline(self) -> datetime:
        """The date the answer is owed by, extension included."""
        return self.extended_due_at or self.due_at


class ExportBundle(models.Model):
    """The zip an access or export request produced, sealed under the person's data key (so
    erasure destroys it too); downloadable until `expires_at`, then deleted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject_id = models.UUIDField(db_index=True)
    request = models.OneToOneField(RightsRequest, on_delete=models.CASCADE, related_name="bundle")
    content = SealedField(subject_field="subject_id", data_class=DataClass.PROFILE)
    size = models.PositiveIntegerField(help_text="Bytes of the zip, before sealing.")
    sha256 = models.CharField(max_length=64, help_text="Of the zip, so the person can check the download.")
    expires_at = models.DateTimeField(db_index=True)
    downloaded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"export {self.id}"


class ProviderDeletionStatus(models.TextChoices):
    RECEIVED = "received", "Received, in progress"
    COMPLETED = "completed", "Completed"


class ProviderDeletion(models.Model):
    """A deletion a sign-in provider asked for on the person's behalf (Meta's data deletion
    callback), as the provider's status page shows it: a random, unguessable confirmation code,
    its status and dates. It names nobody: no subject id, no provider user id, so the page
    reveals nothing and nothing links the code to the person once the request is answered.

    While an erasure the provider asked for waits (a legal hold), `request_id` names that erasure
    request so the code completes when it runs; the link goes with the completion."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.CharField(max_length=32, unique=True)
    provider = models.CharField(max_length=32, help_text="The provider's id, e.g. facebook.")
    status = models.CharField(
        max_length=16, choices=ProviderDeletionStatus.choices, default=ProviderDeletionStatus.RECEIVED
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    request_id = models.UUIDField(null=True, blank=True, db_index=True, help_text="The waiting erasure, until it runs.")

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.provider} deletion {self.code} ({self.status})"
