"""Verify the whole audit chain: exit 0 when intact, 1 naming the first bad entry otherwise."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from vault.audit import DEFAULT_BATCH_SIZE, audit_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain, head and signed checkpoints."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="Entries read per database round trip."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        result = audit_verify(batch_size=options["batch_size"])
        if result.failure is not None:
            raise CommandError(f"FAILED at entry {result.failure.seq}: {result.failure.reason}")
        self.stdout.write(
            self.style.SUCCESS(
                f"OK: {result.entries} entries, head {result.head_hash}, {result.checkpoints} checkpoint(s) verified"
            )
        )
