"""Sign a checkpoint of the audit chain's head (run it periodically, e.g. hourly from cron).

The printed JSON line is meant to be copied somewhere the database's administrators cannot
write (a log service, another account's bucket): it later proves the log was not rewritten.
"""

import base64
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from vault.audit import AuditChainBroken, NothingToSign, audit_checkpoint_sign


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
        record = {
            "seq": checkpoint.seq,
            "hash": checkpoint.hash,
            "signed_at": checkpoint.signed_at.isoformat(),
            "key_fingerprint": checkpoint.key_fingerprint,
            "signature": base64.b64encode(bytes(checkpoint.signature)).decode("ascii"),
        }
        self.stdout.write(self.style.SUCCESS(f"Signed checkpoint at entry {checkpoint.seq}, head {checkpoint.hash}"))
        self.stdout.write(json.dumps(record, sort_keys=True))
