"""Demo data for a first run: a staff login and a few people. Safe to run again."""

from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User

# Development only (the command refuses to run in production), so fixed, printed passwords
# are what a newcomer needs: they can log in without reading the code.
DEMO_PASSWORD = "demo-vault-password"  # noqa: S105 (development only, printed on purpose)
STAFF_EMAIL = "staff@demo.example"
PEOPLE = ("ada@demo.example", "grace@demo.example", "alan@demo.example")


class Command(BaseCommand):
    help = "Create demo people and a staff login (idempotent; refuses to run in production)."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("seed_demo creates logins with published passwords; it never runs in production.")
        with transaction.atomic():
            created = [self._login(STAFF_EMAIL, staff=True)] + [self._login(email) for email in PEOPLE]
        self.stdout.write(self.style.SUCCESS(f"Demo data ready ({sum(created)} new login(s), {len(created)} in all)."))
        self.stdout.write(f"  Staff admin  /admin/  {STAFF_EMAIL}  password: {DEMO_PASSWORD}")
        for email in PEOPLE:
            self.stdout.write(f"  Person       /        {email}  password: {DEMO_PASSWORD}")

    def _login(self, email: str, *, staff: bool = False) -> bool:
        user, created = User.objects.get_or_create(email=email, defaults={"is_staff": staff, "is_superuser": staff})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
        return created
