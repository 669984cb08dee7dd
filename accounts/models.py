import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone

from vault.fields import SealedField
from vault.models import DataClass


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> "User":
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> "User":
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> "User":
        return self.get(email=normalize_email(username or ""))


class User(AbstractBaseUser, PermissionsMixin):
    """A login. Its UUID is the data subject's id everywhere in the vault.

    The email is one of the two plaintext identifiers DESIGN.md allows (login and mail delivery
    need it); it is removed on erasure. Names and every other attribute are profile data and
    live encrypted in the vault, so there are deliberately no name fields here.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField("email address", max_length=254, unique=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Can log in to the staff admin.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ("created_at",)

    def __str__(self) -> str:
        # Admin pages, logs and error messages show the opaque id, never the address.
        return str(self.id)

    def display_name(self) -> str:
        """How pages address the person themselves ("Signed in as ..."): their login address,
        which they know; the opaque id means nothing to them (allauth's ACCOUNT_USER_DISPLAY)."""
        return self.email or str(self.id)

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Stored lower-cased, as allauth stores its EmailAddress rows, so uniqueness is
        # case-insensitive with one plain unique index.
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def mask_email(email: str) -> str:
    """`a***@example.com`: enough for staff to recognise a login, not to harvest addresses."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


# --- Sealed social-provider data (DESIGN.md invariant 1; accounts/social/sealing.py writes these) -------
class SealedSocialAccountData(models.Model):
    """The provider's profile response of one linked social account, sealed under the person's
    "tokens" key. django-allauth's own `SocialAccount.extra_data` column is kept empty; the row
    goes with the account when the person unlinks it (the foreign key cascades)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject_id = models.UUIDField()
    account = models.OneToOneField("socialaccount.SocialAccount", on_delete=models.CASCADE, related_name="vault_data")
    extra_data = SealedField(subject_field="subject_id", data_class=DataClass.TOKENS, null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("created_at",)
        verbose_name_plural = "sealed social account data"

    def __str__(self) -> str:
        return f"provider data of account {self.account_id}"


class SealedSocialToken(models.Model):
    """The access and refresh token of one `SocialToken`, sealed under the person's "tokens" key.
    django-allauth's `token` and `token_secret` columns are kept empty."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject_id = models.UUIDField()
    token = models.OneToOneField("socialaccount.SocialToken", on_delete=models.CASCADE, related_name="vault_token")
    # allauth's `token`: the OAuth2 access token (OAuth1: oauth_token).
    access_token = SealedField(subject_field="subject_id", data_class=DataClass.TOKENS, null=True)
    # allauth's `token_secret`: the OAuth2 refresh token (OAuth1: oauth_token_secret).
    refresh_token = SealedField(subject_field="subject_id", data_class=DataClass.TOKENS, null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("created_at",)

    def __str__(self) -> str:
        return f"sealed token {self.token_id}"


class PurgeReason(models.TextChoices):
    """Why a provider's data was removed from a link (shown to the person)."""

    REVOKED = "revoked", "access was revoked"
    STALE = "stale", "it could not be refreshed in time"


class SocialLinkState(models.Model):
    """The refresh bookkeeping of one linked social account (accounts/social/refresh.py): when it
    was last refreshed, when it is due, how often it failed, and whether (and why) what the
    provider brought was purged. Dates and codes only: nothing personal."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.OneToOneField("socialaccount.SocialAccount", on_delete=models.CASCADE, related_name="link_state")
    subject_id = models.UUIDField(db_index=True)
    last_refresh_at = models.DateTimeField(null=True, blank=True, help_text="Last attempt, successful or not.")
    last_success_at = models.DateTimeField(help_text="Last time the provider's answer was fetched (or signed in).")
    next_refresh_at = models.DateTimeField(
        null=True, blank=True, db_index=True, help_text="Due from then on; empty: only a sign-in refreshes."
    )
    failures = models.PositiveIntegerField(default=0, help_text="Failed attempts since the last success.")
    last_error = models.CharField(max_length=32, blank=True, help_text="Code of the last failure.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)
    purge_reason = models.CharField(max_length=16, choices=PurgeReason.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("created_at",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(purge_reason__in=["", *PurgeReason.values]), name="accounts_link_purge_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"link state of account {self.account_id}"


def user_display(user: Any) -> str:
    """allauth's ACCOUNT_USER_DISPLAY: see `User.display_name`."""
    return user.display_name() if isinstance(user, User) else str(user)
