import pytest

from accounts.models import User


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(db) -> User:
    return User.objects.create_user("alice@example.com", "correct horse battery")


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_user("bob@example.com", "correct horse battery")


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_user("staff@example.com", "correct horse battery", is_staff=True)
