"""The crypto layer's errors, and the one way subject ids are taken in."""

import uuid

from vault.errors import ApplicationError, ErrorKind
from vault.keys import VaultError


class SubjectErased(VaultError, ApplicationError):
    """The subject's keys were destroyed: their data is gone for good (410 on the API)."""

    kind = ErrorKind.GONE
    code = "person_erased"
    message = "This person's data was erased."


class DecryptionFailed(VaultError):
    """A ciphertext did not authenticate: tampered, moved to another row/field/subject, or corrupt."""


def as_subject_id(value: uuid.UUID | str) -> uuid.UUID:
    """Subjects are UUIDs; a UUID given as text is accepted, anything else is a bug."""
    return value if type(value) is uuid.UUID else uuid.UUID(str(value))
