"""Erase a subject by destroying their data keys. Immediate and irreversible."""

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from vault.models import AuditActorType
from vault.services import subject_keys_shred


class Command(BaseCommand):
    help = "Destroy every data key of a subject: all their encrypted data becomes unreadable for good."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("subject_id", help="The subject's UUID.")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args: Any, subject_id: str, yes: bool, **options: Any) -> None:
        try:
            subject = uuid.UUID(subject_id)
        except ValueError:
            raise CommandError("SUBJECT_ID must be a UUID (the subject's opaque id).") from None
        if not yes:
            answer = input(f"Destroy every key of subject {subject}? This cannot be undone. Type 'shred': ")
            if answer.strip() != "shred":
                raise CommandError("Not confirmed; nothing was destroyed.")
        destroyed = subject_keys_shred(
            subject_id=subject, actor_type=AuditActorType.SYSTEM, actor_id="cli.vault_subject_shred"
        )
        self.stdout.write(self.style.SUCCESS(f"Subject {subject} shredded: {destroyed} data key(s) destroyed."))
