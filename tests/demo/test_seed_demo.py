import datetime

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import User
from consent.models import Method
from consent.selectors import consent_is_granted
from consent.services import consent_grant
from profiles.gate import ACCOUNT_PURPOSE, Actor, profile_read
from profiles.models import ProfileValue, ProfileValueHistory
from staff.roles import ROLES
from vault.audit import audit_verify


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_prints_the_staff_login(capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    assert User.objects.count() == 4
    assert "staff@demo.example" in first and "password" in first
    staff = User.objects.get(email="staff@demo.example")
    assert staff.is_staff and not staff.is_superuser, "superuser is for installation only"
    assert set(staff.groups.values_list("name", flat=True)) == set(ROLES), "the demo staff holds every role"


@pytest.mark.django_db
def test_demo_staff_can_open_the_admin(capsys):
    call_command("seed_demo")
    output = capsys.readouterr().out
    password = output.split("staff@demo.example  password: ")[1].split()[0]
    client = Client()
    assert client.login(username="staff@demo.example", password=password)
    assert client.get("/admin/accounts/user/").status_code == 200
    assert client.get("/admin/keys/").status_code == 200  # a console, through its role


@pytest.mark.django_db
def test_seed_demo_refuses_production(settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="never runs in production"):
        call_command("seed_demo")


@pytest.mark.usefixtures("profile_schema")
def test_the_demo_logins_get_a_small_adult_profile_once(capsys):
    call_command("seed_demo")
    call_command("seed_demo")
    ada = User.objects.get(email="ada@demo.example")
    held = profile_read(
        subject_id=ada.pk, fields=["given_name", "birth_date"], purpose=ACCOUNT_PURPOSE, actor=Actor.system("test")
    )
    assert held["given_name"].value == "Ada"
    today = datetime.date.today()
    assert held["birth_date"].value <= today.replace(year=today.year - 18)
    assert ProfileValue.objects.filter(subject_id=ada.pk).count() == 5  # the second run wrote nothing
    assert not ProfileValueHistory.objects.exists()
    # Granting in the portal sends no age: the consent age gate reads it from the profile.
    consent_grant(subject_id=ada.pk, purpose="personalization", method=Method.WEB_FORM)
    assert consent_is_granted(subject_id=ada.pk, purpose="personalization")


@pytest.mark.usefixtures("profile_schema")
def test_seed_demo_people_adds_profile_only_people_with_progress(capsys):
    call_command("seed_demo", "--people", "12", "--seed", "1", "--batch-size", "5")
    out = capsys.readouterr().out
    assert "5 / 12 people" in out and "12 / 12 people" in out and "12 demo people" in out
    assert User.objects.count() == 4  # the demo people are not logins
    people = ProfileValue.objects.exclude(subject_id__in=User.objects.values("pk")).values("subject_id")
    assert people.distinct().count() == 12
    call_command("consent_rebuild", "--check")
    assert audit_verify().ok


@pytest.mark.parametrize("arguments", [["--people", "-1"], ["--people", "3", "--batch-size", "0"]])
def test_seed_demo_refuses_bad_numbers(arguments):
    with pytest.raises(CommandError, match="must"):
        call_command("seed_demo", *arguments)


@pytest.mark.django_db
def test_demo_staff_finish_two_factor_sign_in_with_the_printed_code(capsys, staff_mfa):
    """The demo staff login comes with an authenticator; `--staff-code` prints its current code,
    so a newcomer gets through the real two-factor sign-in into the admin."""
    from django.contrib.auth.signals import user_logged_in
    from django.db.models.signals import post_save

    post_save.disconnect(sender=User, dispatch_uid="tests.staff_mfa.authenticator")  # the real set-up only
    user_logged_in.disconnect(dispatch_uid="tests.staff_mfa.login")
    call_command("seed_demo")
    printed = capsys.readouterr().out
    assert "--staff-code" in printed
    client = Client()
    signed_in = client.post("/accounts/login/", {"login": "staff@demo.example", "password": "demo-vault-password"})
    assert signed_in.status_code == 302 and "/2fa/" in signed_in.url
    call_command("seed_demo", "--staff-code")
    code = capsys.readouterr().out.strip()
    assert code.isdigit() and len(code) == 6
    assert client.post(signed_in.url, {"code": code}).status_code == 302
    assert client.get("/admin/").status_code == 200
