"""Delete profile data past its retention now (the Celery beat task does it hourly)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from profiles.services import retention_run


class Command(BaseCommand):
    help = "Delete values, history, documents and events past their retention period."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only show what would be deleted.")
        parser.add_argument("--batch-size", type=int, default=None, help="Rows deleted per transaction.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] is not None and options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        report = retention_run(dry_run=options["dry_run"], batch_size=options["batch_size"])
        verb = "Would delete" if options["dry_run"] else "Deleted"
        self.stdout.write(self.style.SUCCESS(f"{verb} {report.total} row(s) past their retention."))
        for model, by_name in report.counts.items():
            for name, count in sorted(by_name.items()):
                self.stdout.write(f"  {model:<20} {name:<24} {count}")
