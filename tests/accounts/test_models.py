import uuid

import pytest
from django.contrib.auth import authenticate
from django.db import IntegrityError

from accounts.models import User


@pytest.mark.django_db
def test_users_have_uuid_ids_and_no_name_fields():
    user = User.objects.create_user("Ada@Example.COM", "correct horse battery")
    assert isinstance(user.id, uuid.UUID)
    assert user.email == "ada@example.com"
    field_names = {field.name for field in User._meta.get_fields()}
    assert not field_names & {"username", "first_name", "last_name", "name"}
    assert str(user) == str(user.id), "a user prints as its opaque id, never its address"


@pytest.mark.django_db
def test_email_is_unique_regardless_of_case():
    User.objects.create_user("ada@example.com", "x")
    with pytest.raises(IntegrityError):
        User.objects.create_user("ADA@example.com", "y")


@pytest.mark.django_db
def test_login_by_email_in_any_case():
    user = User.objects.create_user("ada@example.com", "correct horse battery")
    assert authenticate(username="ADA@example.com", password="correct horse battery") == user
    assert authenticate(username="ada@example.com", password="wrong") is None


@pytest.mark.django_db
def test_superuser_is_staff():
    admin = User.objects.create_superuser("root@example.com", "correct horse battery")
    assert admin.is_staff and admin.is_superuser
