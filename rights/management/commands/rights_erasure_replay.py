"""After restoring a database backup: erase again everyone the erasure journal names."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rights.services import erasure_replay
from vault.erasure_journal import ErasureJournalError


class Command(BaseCommand):
    help = (
        "Replay the erasure journal (VAULT_ERASURE_JOURNAL) after a restore: every person erased since "
        "the backup is made unreadable again (keys destroyed) and their rows deleted (docs/backups.md)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            subjects = erasure_replay()
        except ErasureJournalError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Erasure journal replayed: {len(subjects)} person(s) erased again."))
