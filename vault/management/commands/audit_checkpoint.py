"""Sign a checkpoint of the audit chain's head (Celery beat runs the same every AUDIT_CHECKPOINT_SECONDS).

The printed JSON line is meant to be copied somewhere the database's administrators cannot
write (a log service, another account's bucket): it later proves the log was not rewritten.
"""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from vault.audit import AuditChainBroken, NothingToSign, audit_checkpoint_sign, checkpoint_record


class Command(BaseCommand):
    help = "Verify the audit chain, then sign its head with the audit signing key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-verify",
            action="store_true",
            help="Sign the head without verifying the chain first (faster on a very large log).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            checkpoint = audit_checkpoint_sign(verify=not options["no_verify"])
        except NothingToSign as exc:
            self.stdout.write(str(exc))
            return
        except AuditChainBroken as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Signed checkpoint at entry {checkpoint.seq}, head {checkpoint.hash}"))
        self.stdout.write(json.dumps(checkpoint_record(checkpoint), sort_keys=True))
