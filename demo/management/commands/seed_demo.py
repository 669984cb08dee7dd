"""Demo data for a first run: a staff login and a few people with small profiles, and with
`--people N` that many realistic profile-only people (demo.people). Safe to run again: the
logins and their profiles are made once; `--people` adds N more people each time."""

import time
from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import User
from demo.people import adult_birth_date, demo_login_profile_ensure, demo_people_create

# Development only (the command refuses to run in production), so fixed, printed passwords
# are what a newcomer needs: they can log in without reading the code.
DEMO_PASSWORD = "demo-vault-password"  # noqa: S105 (development only, printed on purpose)
STAFF_EMAIL = "staff@demo.example"
# Staff must sign in with two factors (accounts/mfa.py). The demo staff login comes with an
# authenticator already set up on this secret, so a newcomer reaches the admin without a phone:
# `seed_demo --staff-code` prints the current code (or add the secret to any authenticator app).
DEMO_TOTP_SECRET = "DEMOSTAFFTWOFACTORDEVELOPMENTKEY"  # noqa: S105 (development only, printed on purpose)
PEOPLE = ("ada@demo.example", "grace@demo.example", "alan@demo.example")
# What each demo login "entered at sign-up": sealed in their profile, never on the account row.
# Adults, so the consent age gate lets them grant purposes in the portal.
PROFILES: dict[str, dict[str, Any]] = {
    "ada@demo.example": {
        "given_name": "Ada",
        "family_name": "Lovelace",
        "birth_date": adult_birth_date(36, month=12, day=10),
        "country": "GB",
        "preferred_language": "en",
    },
    "grace@demo.example": {
        "given_name": "Grace",
        "family_name": "Hopper",
        "birth_date": adult_birth_date(41, month=12, day=9),
        "country": "US",
        "preferred_language": "en",
    },
    "alan@demo.example": {
        "given_name": "Alan",
        "family_name": "Turing",
        "birth_date": adult_birth_date(29, month=6, day=23),
        "country": "GB",
        "preferred_language": "en",
    },
}


class Command(BaseCommand):
    help = "Create demo logins (idempotent) and, with --people N, N realistic demo people; refuses production."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--people", type=int, default=0, help="Also create this many profile-only demo people.")
        parser.add_argument("--seed", type=int, default=None, help="Make the same people on every run (new ids).")
        parser.add_argument("--batch-size", type=int, default=5000, help="People per transaction.")
        parser.add_argument(
            "--staff-code", action="store_true", help="Only print the demo staff's current two-factor code."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("seed_demo creates logins with published passwords; it never runs in production.")
        if options["staff_code"]:
            self.stdout.write(format_hotp_value(hotp_value(DEMO_TOTP_SECRET, int(time.time()) // 30)))
            return
        if options["people"] < 0 or options["batch_size"] < 1:
            raise CommandError("--people must not be negative, and --batch-size must be at least 1.")
        with transaction.atomic():
            created = [self._login(STAFF_EMAIL, staff=True)] + [self._login(email) for email in PEOPLE]
        self.stdout.write(self.style.SUCCESS(f"Demo data ready ({sum(created)} new login(s), {len(created)} in all)."))
        self.stdout.write(f"  Staff admin  /admin/  {STAFF_EMAIL}  password: {DEMO_PASSWORD}")
        self.stdout.write(
            "               then the two-factor code that `manage.py seed_demo --staff-code` prints "
            f"(or add the secret {DEMO_TOTP_SECRET} to an authenticator app)"
        )
        for email in PEOPLE:
            self.stdout.write(f"  Person       /        {email}  password: {DEMO_PASSWORD}")
        if options["people"]:
            self._people(options["people"], seed=options["seed"], batch_size=options["batch_size"])

    def _login(self, email: str, *, staff: bool = False) -> bool:
        user, created = User.objects.get_or_create(email=email, defaults={"is_staff": staff})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        if staff and created:
            # Every staff role the migrations installed, so the demo shows each console; never
            # superuser, which is for installation only (docs/admin.md).
            user.groups.set(Group.objects.all())
        EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
        if staff and not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            TOTP.activate(user, DEMO_TOTP_SECRET)
        if email in PROFILES:
            demo_login_profile_ensure(subject_id=user.pk, values=PROFILES[email])
        return created

    def _people(self, count: int, *, seed: int | None, batch_size: int) -> None:
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            self.stdout.write(f"  {done:,} / {total:,} people ({time.monotonic() - started:.1f} s)")

        run = demo_people_create(count=count, seed=seed, batch_size=batch_size, progress=progress)
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(run.subject_ids):,} demo people: {run.values:,} values, {run.documents:,} documents, "
                f"{run.events:,} events, {run.consent_events:,} consent events "
                f"in {time.monotonic() - started:.1f} s."
            )
        )
