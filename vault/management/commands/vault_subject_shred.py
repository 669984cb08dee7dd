"""Erase a subject by destroying their data keys. Immediate and irreversible."""

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from vault.audit import audit_pseudonym_unlink, audit_record
from vault.crypto import SubjectErased, subject_shred
from vault.models import AuditActorType


class Command(BaseCommand):
    help = "Destroy every data key of a subject: all their encrypted data becomes unreadable for good."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("subject_id", help="The subject's UUID.")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args: Any, subject_id: str, yes: bool, **options: Any) -> None:
        try:
            subject = uuid.UUID(subject_id)
        except ValueError:
            raise CommandError(f"{subject_id!r} is not a UUID.") from None
        if not yes:
            answer = input(f"Destroy every key of subject {subject}? This cannot be undone. Type 'shred': ")
            if answer.strip() != "shred":
                raise CommandError("Not confirmed; nothing was destroyed.")
        try:
            # The entry is written under the subject's pseudonym, then the link to it is cut:
            # the log keeps that an erasure happened, and no longer whose.
            with transaction.atomic():
                audit_record(
                    actor_type=AuditActorType.SYSTEM,
                    actor_id="cli.vault_subject_shred",
                    action="subject.shred",
                    subject_id=subject,
                )
                audit_pseudonym_unlink(subject)
        except SubjectErased:
            pass  # shredded before: destroying again is harmless and leaves no second entry
        destroyed = subject_shred(subject)
        self.stdout.write(self.style.SUCCESS(f"Subject {subject} shredded: {destroyed} data key(s) destroyed."))
