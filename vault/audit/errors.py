"""The audit log's typed errors, apart so that every module of the package raises the same ones."""

from typing import Any

from vault.keys import VaultError


class AuditError(VaultError):
    """Base of the audit log's typed errors."""


class InvalidAuditEntry(AuditError, ValueError):
    """An event that must not be logged as given: a value where a name belongs, or a bad actor."""


class AuditChainBroken(AuditError):
    """The chain is not in a state an append or a checkpoint may build on; run `audit_verify`."""


class NothingToSign(AuditError):
    """A checkpoint of an empty log would vouch for nothing."""


class CheckpointSinkError(AuditError):
    """The exported checkpoints cannot be read: a missing path or a line that is no record."""


class CheckpointExportFailed(AuditError):
    """A checkpoint was signed and stored in the database, but its copy outside could not be
    written. The checkpoint stays valid; the next one is exported again."""

    def __init__(self, message: str, *, record: dict[str, Any]) -> None:
        super().__init__(message)
        self.record = record
