"""Sign a checkpoint of the audit chain's head (Celery beat runs the same every AUDIT_CHECKPOINT_SECONDS).

The checkpoint is stored in the database and exported to AUDIT_CHECKPOINT_SINK, which should be
storage the database's administrators cannot rewrite; `audit_verify --checkpoints` later compares
the two. The JSON line printed is the exported record, for copying by hand as well.
"""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from vault.audit import (
    AuditChainBroken,
    CheckpointExportFailed,
    NothingToSign,
    audit_checkpoint_sign,
    checkpoint_record,
    checkpoint_sink,
)


class Command(BaseCommand):
    help = "Verify the audit chain, sign its head with the audit signing key, and export the checkpoint."

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
        except CheckpointExportFailed as exc:
            self.stdout.write(json.dumps(exc.record, sort_keys=True))
            raise CommandError(str(exc)) from None
        except AuditChainBroken as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Signed checkpoint at entry {checkpoint.seq}, head {checkpoint.hash}"))
        sink = checkpoint_sink()
        if sink is None:
            self.stderr.write(
                "AUDIT_CHECKPOINT_SINK is not set: this checkpoint is in the database only, where whoever "
                "can write the database can delete it. Copy the line below somewhere they cannot write."
            )
        else:
            self.stdout.write(f"Exported to {sink}")
        self.stdout.write(json.dumps(checkpoint_record(checkpoint), sort_keys=True))
