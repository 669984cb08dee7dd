"""Verify the whole audit chain: exit 0 when intact, 1 naming the first bad entry otherwise.

With `--checkpoints PATH` (the exported copy of the checkpoints: AUDIT_CHECKPOINT_SINK, or a
download of it) the chain is also held against the checkpoints kept outside the database, which
someone able to write the database cannot delete or re-sign.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from vault.audit import DEFAULT_BATCH_SIZE, CheckpointSinkError, audit_verify, exported_checkpoints_read


class Command(BaseCommand):
    help = "Verify the audit log's hash chain, head and signed checkpoints (and their exported copy)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="Entries read per database round trip."
        )
        parser.add_argument(
            "--checkpoints",
            metavar="PATH",
            help="The exported checkpoints (a JSON-lines file or a directory of them) to hold the database against.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        exported = None
        if path := options["checkpoints"]:
            try:
                exported = exported_checkpoints_read(path)
            except CheckpointSinkError as exc:
                raise CommandError(f"FAILED: {exc}") from None
            if not exported:
                raise CommandError(
                    f"FAILED: {path} holds no checkpoints: nothing outside the database vouches for the log."
                )
        result = audit_verify(batch_size=options["batch_size"], exported=exported)
        if result.failure is not None:
            raise CommandError(f"FAILED at entry {result.failure.seq}: {result.failure.reason}")
        summary = f"OK: {result.entries} entries, head {result.head_hash}, {result.checkpoints} checkpoint(s) verified"
        if exported is None:
            self.stdout.write(self.style.SUCCESS(summary))
            self.stdout.write(
                "Checkpoints were read from the database only; pass --checkpoints PATH to hold it against "
                "the exported copy."
            )
            return
        matched = f"{result.exported} exported checkpoint(s) matched (newest at entry {result.newest_exported})"
        self.stdout.write(self.style.SUCCESS(f"{summary}, {matched}"))
        if result.head_seq > result.newest_exported:
            self.stdout.write(
                f"Entries {result.newest_exported + 1}..{result.head_seq} come after the newest exported "
                "checkpoint: only the chain protects them, not against someone able to write the database."
            )
