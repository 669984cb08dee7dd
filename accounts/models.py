import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone


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

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Stored lower-cased, as allauth stores its EmailAddress rows, so uniqueness is
        # case-insensitive with one plain unique index.
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)


def normalize_email(email: str) -> str:
    return email.strip().lower()
