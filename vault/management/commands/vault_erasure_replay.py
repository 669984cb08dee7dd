"""After restoring a database backup: erase again everyone the erasure journal names."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from vault.erasure_journal import ErasureJournalError
from vault.services import erasure_journal_replay


class Command(BaseCommand):
    help = (
        "Destroy again the data keys of every subject in the erasure journal (VAULT_ERASURE_JOURNAL). "
        "Run it after restoring a database backup, before `rights_erasure_replay` (docs/backups.md)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            subjects = erasure_journal_replay()
        except ErasureJournalError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(f"Erasure journal replayed: {len(subjects)} subject(s) erased (again where restored).")
        )
