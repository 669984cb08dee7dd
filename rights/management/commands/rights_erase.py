"""Erase a person now, for a request received offline: the same service as every erasure."""

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from profiles.gate import Actor
from rights.services import erasure_now
from vault.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Erase a person at once (a request received offline and verified by you): sessions ended, "
        "provider tokens revoked, keys destroyed, every row deleted. Irreversible."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("subject_id", help="The person's subject id (UUID).")
        parser.add_argument("--note", required=True, help="How the person's identity was verified (sealed).")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args: Any, subject_id: str, note: str, yes: bool, **options: Any) -> None:
        try:
            subject = uuid.UUID(subject_id)
        except ValueError:
            raise CommandError("SUBJECT_ID must be a UUID (the person's opaque id).") from None
        if not yes:
            answer = input(f"Erase subject {subject} for good? Type 'erase': ")
            if answer.strip() != "erase":
                raise CommandError("Not confirmed; nothing was erased.")
        try:
            erased = erasure_now(subject_id=subject, actor=Actor.system("cli.rights_erase"), note=note)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if erased is None:
            raise CommandError("The erasure did not run (another process is running it).")
        self.stdout.write(self.style.SUCCESS(f"Subject {subject} erased: keys destroyed and rows deleted."))
