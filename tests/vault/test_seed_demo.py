import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import User


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_prints_the_staff_login(capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    assert User.objects.count() == 4
    assert "staff@demo.example" in first and "password" in first
    staff = User.objects.get(email="staff@demo.example")
    assert staff.is_staff


@pytest.mark.django_db
def test_demo_staff_can_open_the_admin(capsys):
    call_command("seed_demo")
    output = capsys.readouterr().out
    password = output.split("staff@demo.example  password: ")[1].split()[0]
    client = Client()
    assert client.login(username="staff@demo.example", password=password)
    assert client.get("/admin/accounts/user/").status_code == 200


@pytest.mark.django_db
def test_seed_demo_refuses_production(settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="never runs in production"):
        call_command("seed_demo")
