"""Rebuild the consent projection from the ledger: exit 0 when done (or already in step), 1 when
`--check` finds the projection out of step."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from consent.services import consent_projection_rebuild


class Command(BaseCommand):
    help = "Replay the consent ledger into the projection (one row per subject and purpose)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="Only report differences; exit 1 if the projection is out of step."
        )
        parser.add_argument("--batch-size", type=int, default=5000, help="Rows read and written per round trip.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        report = consent_projection_rebuild(dry_run=options["check"], batch_size=options["batch_size"])
        summary = (
            f"{report.events} events; projection rows: {report.created} missing, {report.updated} differing, "
            f"{report.deleted} without events, {report.unchanged} in step"
        )
        if options["check"]:
            if not report.in_step:
                raise CommandError(f"OUT OF STEP: {summary}")
            self.stdout.write(self.style.SUCCESS(f"OK: {summary}"))
        else:
            self.stdout.write(self.style.SUCCESS(f"Rebuilt: {summary}" if not report.in_step else f"OK: {summary}"))
