"""Manage the key-encryption keys: init, rotate, status, retire, epoch. Every change but `init`
(which runs before the database exists) is recorded in the audit log (`keys.*`)."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from vault.crypto import data_keys_by_kek, data_keys_rewrap, standalone_by_kek, standalone_rewrap_all
from vault.keys import LocalKeyProvider, VaultError, get_provider, new_key_set, write_key_file
from vault.services import key_epoch_run, key_operation_record

ACTOR = "cli.vault_keys"


class Command(BaseCommand):
    help = "Manage key-encryption keys (KEKs): init, rotate, status, retire, epoch."
    requires_system_checks: list[str] = []  # it must run while the keys are missing or broken

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        init = sub.add_parser("init", help="Write a new local key file (never overwrites one).")
        init.add_argument("--path", help="Where to write it (default: VAULT_KEKS_FILE).")
        rotate = sub.add_parser("rotate", help="Add a new active KEK, then rewrap every data key under it.")
        rotate.add_argument(
            "--rewrap-only", action="store_true", help="Only rewrap (resume, or keys from a KMS/VAULT_KEKS)."
        )
        rotate.add_argument("--batch-size", type=int, default=5000)
        sub.add_parser("status", help="List KEKs, the active one, and how many data keys each wraps.")
        sub.add_parser(
            "rotate-receipt-key", help="New consent-receipt signing key; the old public key stays in the JWKS."
        )
        retire = sub.add_parser("retire", help="Destroy a KEK that no data key is wrapped by any more.")
        retire.add_argument("kek_id")
        sub.add_parser(
            "epoch",
            help="What the beat task does: a new KEK if the active one is older than VAULT_KEY_EPOCH_DAYS, "
            "and old KEKs destroyed VAULT_BACKUP_RETENTION_DAYS after their epoch ended.",
        )

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            getattr(self, f"_{action.replace('-', '_')}")(**options)
        except (ImproperlyConfigured, VaultError) as exc:
            raise CommandError(str(exc)) from exc

    def _local_provider(self) -> LocalKeyProvider:
        provider = get_provider()
        if not isinstance(provider, LocalKeyProvider):
            raise CommandError(f"{type(provider).__name__} manages its keys itself; use its own tools.")
        return provider

    def _init(self, *, path: str | None, **options: Any) -> None:
        target = Path(path or settings.VAULT_KEKS_FILE)
        if not str(target):
            raise CommandError("No path: pass --path or set VAULT_KEKS_FILE.")
        try:
            write_key_file(target, new_key_set(), overwrite=False)
        except FileExistsError:
            raise CommandError(f"{target} exists; refusing to overwrite keys (that would lose every value).") from None
        self.stdout.write(self.style.SUCCESS(f"Wrote new vault keys to {target} (readable by this user only)."))
        self.stdout.write("Back it up apart from the database: without it the data cannot be read.")

    def _rotate(self, *, rewrap_only: bool, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if not rewrap_only:
            kek_id = self._local_provider().add_kek()
            key_operation_record(action="keys.kek_add", kek_ids=[kek_id], actor_id=ACTOR)
            self.stdout.write(f"New active KEK {kek_id}.")
        active = get_provider().active_kek_id()
        pending = sum(count for kek, count in data_keys_by_kek().items() if kek != active)
        with tqdm(total=pending, unit="key", desc="Rewrapping", file=self.stderr, disable=not pending) as bar:
            done = data_keys_rewrap(batch_size=batch_size, on_batch=bar.update)
        standalone = standalone_rewrap_all()
        if done or standalone:
            key_operation_record(action="keys.rewrap", kek_ids=[active], actor_id=ACTOR)
        self.stdout.write(self.style.SUCCESS(f"Rewrapped {done} data key(s) under {active}."))
        if standalone:
            self.stdout.write(
                self.style.SUCCESS(f"Rewrapped {standalone} other sealed secret(s) (MFA) under {active}.")
            )

    def _status(self, **options: Any) -> None:
        provider = get_provider()
        counts, other = data_keys_by_kek(), standalone_by_kek()
        active = provider.active_kek_id()
        for kek_id in sorted(set(provider.kek_ids()) | set(counts) | set(other)):
            state = "active" if kek_id == active else ("MISSING" if kek_id not in provider.kek_ids() else "")
            line = f"{kek_id:<24} {state:<8} wraps {counts.get(kek_id, 0)} data key(s)"
            self.stdout.write(line + (f" and {other[kek_id]} other sealed secret(s)" if other.get(kek_id) else ""))

    def _rotate_receipt_key(self, **options: Any) -> None:
        self._local_provider().rotate_receipt_key()
        key_operation_record(action="keys.receipt_key_rotate", actor_id=ACTOR)
        self.stdout.write(self.style.SUCCESS("New receipt signing key; older receipts still verify."))

    def _retire(self, *, kek_id: str, **options: Any) -> None:
        provider = self._local_provider()
        provider.remove_kek(
            kek_id, still_used=lambda kek: data_keys_by_kek().get(kek, 0) + standalone_by_kek().get(kek, 0)
        )
        key_operation_record(action="keys.kek_retire", kek_ids=[kek_id], actor_id=ACTOR)
        self.stdout.write(self.style.SUCCESS(f"Retired and destroyed {kek_id}."))

    def _epoch(self, **options: Any) -> None:
        report = key_epoch_run(actor_id=ACTOR)
        if report.skipped == "provider":
            raise CommandError(f"{type(get_provider()).__name__} keys cannot be changed here; use its own rotation.")
        if report.skipped == "busy":
            raise CommandError("Another key epoch run holds the lock; nothing was done.")
        if report.new_kek:
            self.stdout.write(f"New active KEK {report.new_kek}.")
        else:
            self.stdout.write("The active KEK is within its epoch; no new KEK.")
        self.stdout.write(
            f"Rewrapped {report.rewrapped} data key(s) and {report.standalone_rewrapped} other sealed secret(s)."
        )
        for kek_id in report.retired:
            self.stdout.write(self.style.SUCCESS(f"Retired and destroyed {kek_id}."))
        if report.kept:
            kept = ", ".join(report.kept)
            self.stdout.write(f"Old KEKs kept (within the backup retention, or still needed): {kept}.")
