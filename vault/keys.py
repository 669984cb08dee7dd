"""Key providers: where key-encryption keys (KEKs), the blind-index root key and the audit
signing key come from, and the only code that uses KEKs.

Providers wrap and unwrap data keys themselves instead of handing out KEKs, so a cloud KMS or
HashiCorp Vault Transit provider fits the same interface: its `wrap`/`unwrap` become KMS
Encrypt/Decrypt calls with the associated data as encryption context, and its `active_kek_id` is
the KMS key version. Such a provider is a subclass of `KeyProvider` named by `VAULT_KEY_PROVIDER`.

`LocalKeyProvider` reads a JSON key set from `VAULT_KEKS` or the file `VAULT_KEKS_FILE`:

    {"format": "vault-keys/1",
     "active_kek": "kek-20261128-3f9a",
     "keks": {"kek-20261128-3f9a": "<base64 of 32 random bytes>"},
     "activated": {"kek-20261128-3f9a": "<ISO 8601 time it became active>"},
     "superseded": {"<an older kek_id>": "<ISO 8601 time the next KEK became active>"},
     "audit_signing_key": "<base64 of a 32-byte Ed25519 seed>",
     "receipt_signing_key": "<base64 of a 32-byte Ed25519 seed: signs consent receipts>",
     "retired_receipt_public_keys": ["<base64 of 32-byte Ed25519 public keys: verify older receipts>"],
     "index_key": "<base64 of 32 bytes; VAULT_INDEX_KEY wins when set>"}
"""

import base64
import binascii
import fcntl
import json
import os
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_SET_FORMAT = "vault-keys/1"
# Every process sees a changed key file at its next key read (`LocalKeyProvider._current`).
# Work that read the previous key set just before a rotation may still be finishing (a data key
# wrapped under the previous KEK, not yet committed): `retire` refuses the previous KEK until
# twice this long after the new one became active. (The name is older than the check per read.)
RELOAD_CHECK_SECONDS = 30.0


class VaultError(Exception):
    """Base of the vault core's typed errors."""


class UnknownKek(VaultError):
    """A data key names a KEK the provider does not have (retired, or a wrong key set)."""


class UnwrapFailed(VaultError):
    """A wrapped data key did not authenticate: wrong KEK material, tampering or a moved row."""


class KeyProvider(ABC):
    @abstractmethod
    def active_kek_id(self) -> str: ...

    @abstractmethod
    def kek_ids(self) -> list[str]: ...

    @abstractmethod
    def wrap(self, key: bytes, *, associated_data: bytes) -> tuple[str, bytes]:
        """Encrypt a data key under the active KEK; returns (kek_id, wrapped)."""

    @abstractmethod
    def unwrap(self, wrapped: bytes, *, kek_id: str, associated_data: bytes) -> bytes: ...

    @abstractmethod
    def index_root_key(self) -> bytes: ...

    @abstractmethod
    def audit_signing_key(self) -> Ed25519PrivateKey: ...

    @abstractmethod
    def receipt_signing_key(self) -> Ed25519PrivateKey:
        """Signs consent receipts; its public half is published at /.well-known/jwks.json.
        Kept apart from the audit key: receipts go to people, checkpoints to auditors."""

    def receipt_verify_keys(self) -> list[Ed25519PublicKey]:
        """Every key a receipt may have been signed with: the current one, then retired ones
        (receipts are kept for years; rotating the signing key must not invalidate them)."""
        return [self.receipt_signing_key().public_key()]

    def audit_verify_key(self) -> Ed25519PublicKey:
        return self.audit_signing_key().public_key()

    def self_test(self) -> None:
        """Round-trip a throwaway key: proves the active KEK is usable (for /healthz)."""
        probe = secrets.token_bytes(KEY_BYTES)
        kek_id, wrapped = self.wrap(probe, associated_data=b"vault self-test")
        if self.unwrap(wrapped, kek_id=kek_id, associated_data=b"vault self-test") != probe:
            raise VaultError("Key provider self-test returned a different key.")


def associated_data(*parts: str | bytes) -> bytes:
    """Length-prefixed parts, so ("ab", "c") and ("a", "bc") can never collide."""
    out = b""
    for part in parts:
        encoded = part.encode("utf-8") if isinstance(part, str) else part
        out += len(encoded).to_bytes(2, "big") + encoded
    return out


def _frame(kek_id: str) -> bytes:
    return associated_data("kek", kek_id)


def _decode_key(name: str, value: Any, length: int = KEY_BYTES) -> bytes:
    if not isinstance(value, str):
        raise ImproperlyConfigured(f"Vault key set: {name} must be a base64 string.")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"Vault key set: {name} is not valid base64.") from None
    if len(raw) != length:
        raise ImproperlyConfigured(f"Vault key set: {name} must be {length} bytes, got {len(raw)}.")
    return raw


def _encode_key(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def new_kek_id() -> str:
    return f"kek-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(6)}"


def new_key_set() -> dict[str, Any]:
    kek_id = new_kek_id()
    return {
        "format": KEY_SET_FORMAT,
        "active_kek": kek_id,
        "keks": {kek_id: _encode_key(secrets.token_bytes(KEY_BYTES))},
        "activated": {kek_id: datetime.now(UTC).isoformat()},
        "audit_signing_key": _encode_key(secrets.token_bytes(KEY_BYTES)),
        "receipt_signing_key": _encode_key(secrets.token_bytes(KEY_BYTES)),
        "index_key": _encode_key(secrets.token_bytes(KEY_BYTES)),
    }


# A key file's identity and version as the file system reports it: `write_key_file` replaces the
# file (a new inode), and any other edit changes its modification time or size.
FileStamp = tuple[int, int, int, int]


@dataclass(frozen=True)
class _KeySet:
    """One parsed key set. A process swaps the whole object when the file changes, so a reader
    never sees half of an old key set and half of a new one."""

    data: dict[str, Any]
    keks: dict[str, AESGCM]
    frames: dict[str, bytes]
    active: str
    audit_key: Ed25519PrivateKey
    receipt_key: Ed25519PrivateKey
    retired_receipt_keys: tuple[Ed25519PublicKey, ...]
    index_key: bytes


def _stamp(status: os.stat_result) -> FileStamp:
    return (status.st_dev, status.st_ino, status.st_mtime_ns, status.st_size)


class LocalKeyProvider(KeyProvider):
    """Keys from the environment or a local file. The file can be changed by `vault_keys`.

    Every key read first compares the file's stamp (device, inode, modification time, size: one
    `stat`, a few microseconds) with the one it was loaded from, and reloads it when they differ.
    So a rotation made by any process (`vault_keys rotate`, `rotate-receipt-key`) is what every
    process signs, wraps and publishes with from its next key read on, without a restart.
    """

    def __init__(self, *, key_set_json: str = "", path: str = "", index_key: str = ""):
        if not key_set_json and not path:
            raise ImproperlyConfigured(
                "No vault keys: set VAULT_KEKS or VAULT_KEKS_FILE (`manage.py vault_keys init` writes a key file)."
            )
        self.path = Path(path) if path and not key_set_json else None
        self._index_key_override = index_key
        self._lock = threading.RLock()
        self._stamp: FileStamp | None = None
        if self.path is None:
            self._keys = self._parse(key_set_json)
        else:
            text, self._stamp = self._read_file()
            self._keys = self._parse(text)

    @classmethod
    def from_settings(cls) -> "LocalKeyProvider":
        return cls(key_set_json=settings.VAULT_KEKS, path=settings.VAULT_KEKS_FILE, index_key=settings.VAULT_INDEX_KEY)

    def _read_file(self) -> tuple[str, FileStamp]:
        """The file's text and the stamp of exactly that version (taken from the open file, so a
        replacement in between cannot pair new text with an old stamp)."""
        assert self.path is not None
        try:
            with open(self.path, encoding="utf-8") as handle:
                return handle.read(), _stamp(os.fstat(handle.fileno()))
        except FileNotFoundError:
            raise ImproperlyConfigured(
                f"Vault key file {self.path} does not exist; `manage.py vault_keys init` creates one."
            ) from None
        except OSError as exc:
            raise ImproperlyConfigured(f"Vault key file {self.path} cannot be read: {exc.strerror}.") from None

    def _parse(self, text: str) -> _KeySet:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImproperlyConfigured(f"Vault key set is not valid JSON (line {exc.lineno}).") from None
        if not isinstance(data, dict) or data.get("format") != KEY_SET_FORMAT:
            raise ImproperlyConfigured(f'Vault key set must be a JSON object with "format": "{KEY_SET_FORMAT}".')
        keks = data.get("keks")
        if not isinstance(keks, dict) or not keks:
            raise ImproperlyConfigured("Vault key set has no KEKs.")
        active = data.get("active_kek")
        if active not in keks:
            raise ImproperlyConfigured("Vault key set: active_kek must name one of its keks.")
        parsed = {kek_id: AESGCM(_decode_key(f"kek {kek_id}", value)) for kek_id, value in keks.items()}
        signing_key = Ed25519PrivateKey.from_private_bytes(
            _decode_key("audit_signing_key", data.get("audit_signing_key"))
        )
        receipt_key = Ed25519PrivateKey.from_private_bytes(
            _decode_key("receipt_signing_key", data.get("receipt_signing_key"))
        )
        index = self._index_key_override or data.get("index_key")
        if not index:
            raise ImproperlyConfigured("No blind-index key: set VAULT_INDEX_KEY (or index_key in the key set).")
        index_key = _decode_key("VAULT_INDEX_KEY", index)
        retired = data.get("retired_receipt_public_keys", [])
        if not isinstance(retired, list):
            raise ImproperlyConfigured("Vault key set: retired_receipt_public_keys must be a list.")
        retired_keys = tuple(
            Ed25519PublicKey.from_public_bytes(_decode_key("retired_receipt_public_keys", value)) for value in retired
        )
        return _KeySet(
            data=data,
            keks=parsed,
            frames={kek_id: _frame(kek_id) for kek_id in parsed},
            active=str(active),
            audit_key=signing_key,
            receipt_key=receipt_key,
            retired_receipt_keys=retired_keys,
            index_key=index_key,
        )

    def _file_stamp(self) -> FileStamp | None:
        try:
            return _stamp(self.path.stat()) if self.path is not None else None
        except OSError:
            return None

    def reload(self) -> None:
        """Re-read the key file now. Key reads do this themselves when the file changed."""
        if self.path is not None:
            with self._lock:
                text, stamp = self._read_file()
                # Only a fully valid key set replaces the current one.
                self._keys, self._stamp = self._parse(text), stamp

    def _current(self) -> _KeySet:
        """The key set as the file holds it now: reloaded when the file's stamp changed since it
        was read. A file that disappeared or broke fails this read clearly, as it would at start."""
        if self.path is not None and self._file_stamp() != self._stamp:
            with self._lock:
                if self._file_stamp() != self._stamp:  # another thread may have reloaded meanwhile
                    self.reload()
        return self._keys

    def active_kek_id(self) -> str:
        return self._current().active

    def kek_ids(self) -> list[str]:
        return list(self._current().keks)

    # The kek_id is bound into the associated data too, so a wrapped key relabelled with
    # another kek_id fails to unwrap instead of being tried under the wrong key.
    def wrap(self, key: bytes, *, associated_data: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        keys = self._current()
        kek_id = keys.active
        return kek_id, nonce + keys.keks[kek_id].encrypt(nonce, key, associated_data + keys.frames[kek_id])

    def unwrap(self, wrapped: bytes, *, kek_id: str, associated_data: bytes) -> bytes:
        # No stamp check here, on the hot path of every read: a rotation only adds a KEK, so the
        # keys already loaded still unwrap everything they know; a KEK they do not know (added by
        # another process) reloads the file. A retired KEK stays usable in this process until its
        # next reload, which is harmless: nothing is wrapped under it any more.
        keys = self._keys
        if kek_id not in keys.keks:
            self.reload()
            keys = self._keys
            if kek_id not in keys.keks:
                raise UnknownKek(f"KEK {kek_id!r} is not in the key set (retired or never known here).")
        try:
            return keys.keks[kek_id].decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], associated_data + keys.frames[kek_id]
            )
        except InvalidTag:
            raise UnwrapFailed(f"A data key wrapped by {kek_id!r} did not authenticate.") from None

    def index_root_key(self) -> bytes:
        return self._current().index_key

    def audit_signing_key(self) -> Ed25519PrivateKey:
        return self._current().audit_key

    def receipt_signing_key(self) -> Ed25519PrivateKey:
        return self._current().receipt_key

    def receipt_verify_keys(self) -> list[Ed25519PublicKey]:
        keys = self._current()
        return [keys.receipt_key.public_key(), *keys.retired_receipt_keys]

    def rotate_receipt_key(self) -> None:
        """A new receipt signing key. The old one's public half stays published for good: a
        receipt is kept as long as the consent it records, and must verify all that time."""
        with self._edit() as data:
            old_public = self._keys.receipt_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            data["retired_receipt_public_keys"] = [
                _encode_key(old_public),
                *data.get("retired_receipt_public_keys", []),
            ]
            data["receipt_signing_key"] = _encode_key(secrets.token_bytes(KEY_BYTES))

    # --- Key management (local keys only; a KMS manages its keys itself) ---------------------

    @contextmanager
    def _edit(self) -> Iterator[dict[str, Any]]:
        """Change the key file under an exclusive lock, starting from what is on disk now, so two
        `vault_keys` runs (rotate and retire, say) cannot overwrite each other's change."""
        if self.path is None:
            raise ImproperlyConfigured(
                "Keys come from VAULT_KEKS, which this command cannot change: add the new KEK there "
                "(or use VAULT_KEKS_FILE), restart, then run `vault_keys rotate --rewrap-only`."
            )
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        with self._lock, open(lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            self.reload()
            data = json.loads(json.dumps(self._keys.data))  # a deep copy to edit
            yield data
            keys = self._parse(json.dumps(data))  # only a valid key set is written
            write_key_file(self.path, data, overwrite=True)
            self._keys, self._stamp = keys, self._file_stamp()

    def add_kek(self, *, now: datetime | None = None) -> str:
        """A new random KEK, made active. Older KEKs stay for unwrapping until retired. The key
        file records when it became active and when the one before it was superseded (the end
        of that KEK's epoch, from which its backup retention is counted)."""
        moment = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
        with self._edit() as data:
            kek_id = new_kek_id()
            while kek_id in data["keks"]:
                kek_id = new_kek_id()
            data["keks"][kek_id] = _encode_key(secrets.token_bytes(KEY_BYTES))
            data.setdefault("activated", {})[kek_id] = moment
            data.setdefault("superseded", {})[data["active_kek"]] = moment
            data["active_kek"] = kek_id
        return kek_id

    def active_since(self) -> datetime | None:
        """When the active KEK became active (None for key sets written without the time)."""
        keys = self._current()
        stamp = keys.data.get("activated", {}).get(keys.active)
        return datetime.fromisoformat(stamp) if isinstance(stamp, str) else None

    def kek_epochs(self) -> list["KekEpoch"]:
        """Every KEK with the times the key file recorded for it (None where it has none: key
        sets written before the times were kept)."""
        keys = self._current()

        def moment(table: str, kek_id: str) -> datetime | None:
            stamp = keys.data.get(table, {}).get(kek_id)
            return datetime.fromisoformat(stamp) if isinstance(stamp, str) else None

        return [
            KekEpoch(
                kek_id=kek_id,
                active=kek_id == keys.active,
                activated=moment("activated", kek_id),
                superseded=None if kek_id == keys.active else moment("superseded", kek_id),
            )
            for kek_id in keys.keks
        ]

    def superseded_record(self, kek_id: str, *, at: datetime) -> None:
        """Record when an old KEK was superseded, where the key file does not know (a key set
        from before the times were kept): its retention is counted from `at`, never earlier."""
        with self._edit() as data:
            if kek_id in data["keks"] and kek_id != data["active_kek"]:
                data.setdefault("superseded", {}).setdefault(kek_id, at.astimezone(UTC).isoformat())

    def remove_kek(self, kek_id: str, *, still_used: Callable[[str], int], now: datetime | None = None) -> None:
        """Destroy a KEK. `still_used` counts the data keys it wraps; it is asked again under
        the file lock, so a key wrapped meanwhile is never orphaned."""
        now = now or datetime.now(UTC)
        with self._edit() as data:
            if kek_id == data["active_kek"]:
                raise VaultError(f"{kek_id} is the active KEK; rotate before retiring it.")
            if kek_id not in data["keks"]:
                raise UnknownKek(f"KEK {kek_id!r} is not in the key set.")
            # Processes wrap under `kek_id` only until they see it was superseded: that moment
            # if the key file recorded it, else (older key sets) when the active KEK came.
            ended = data.get("superseded", {}).get(kek_id)
            since = datetime.fromisoformat(ended) if isinstance(ended, str) else self.active_since()
            settle = timedelta(seconds=2 * RELOAD_CHECK_SECONDS)
            if since is not None and now - since < settle:
                wait = int((since + settle - now).total_seconds()) + 1
                raise VaultError(
                    f"The active KEK is new: running processes may still wrap keys under {kek_id}. "
                    f"Retry in {wait} s (after `vault_keys rotate --rewrap-only`)."
                )
            if remaining := still_used(kek_id):
                raise VaultError(
                    f"{kek_id} still wraps {remaining} data key(s) or sealed secret(s); "
                    "run `vault_keys rotate --rewrap-only` first."
                )
            del data["keks"][kek_id]
            data.get("activated", {}).pop(kek_id, None)
            data.get("superseded", {}).pop(kek_id, None)


@dataclass(frozen=True)
class KekEpoch:
    """One KEK's epoch as the key file records it: active from `activated` until `superseded`
    (when the next KEK became active; None while it is the active one, or when not recorded)."""

    kek_id: str
    active: bool
    activated: datetime | None
    superseded: datetime | None


def write_key_file(path: Path, data: dict[str, Any], *, overwrite: bool) -> None:
    """Write a key set readable by its owner only, atomically and durably: a crash leaves the
    old file or the new one, never half of one, and never an older one after the database
    already holds keys wrapped by the new KEK. Without `overwrite`, an existing file wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # fails if the file exists, with no window for a race
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@cache
def get_provider() -> KeyProvider:
    provider_class = import_string(settings.VAULT_KEY_PROVIDER)
    if not (isinstance(provider_class, type) and issubclass(provider_class, KeyProvider)):
        raise ImproperlyConfigured("VAULT_KEY_PROVIDER must name a subclass of vault.keys.KeyProvider.")
    factory = getattr(provider_class, "from_settings", provider_class)
    provider: KeyProvider = factory()
    return provider


@receiver(setting_changed)
def _reset_provider(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("VAULT_"):
        get_provider.cache_clear()
