"""Typed errors of the partners API. Codes are part of the API contract; messages never echo a
submitted value."""

from enum import StrEnum

from vault.errors import ApplicationError, ErrorKind, Problem


class PartnerCode(StrEnum):
    PURPOSE_NOT_GRANTED = "purpose_not_granted"
    FIELDS_NOT_GRANTED = "fields_not_granted"
    UNKNOWN_PERSON = "unknown_person"
    INVALID_CLIENT = "invalid_client"


class PartnerError(ApplicationError):
    """Base of the partners errors."""


class PurposeNotGranted(PartnerError):
    kind = ErrorKind.FORBIDDEN
    code = PartnerCode.PURPOSE_NOT_GRANTED
    message = "This client may not use this purpose."
    param_name = "purpose"


class FieldsNotGranted(PartnerError):
    """Fields outside the client's scope: named, never silently left out."""

    kind = ErrorKind.FORBIDDEN
    code = PartnerCode.FIELDS_NOT_GRANTED
    message = "This client may not read these fields."
    param_name = "fields"


class UnknownPerson(PartnerError):
    """No such person for this client, or one who did not consent: the same answer, so consent
    state does not leak."""

    kind = ErrorKind.NOT_FOUND
    code = PartnerCode.UNKNOWN_PERSON
    message = "No such person."
    param_name = "person"


class InvalidClient(PartnerError):
    code = PartnerCode.INVALID_CLIENT
    message = "The client's settings are not valid."


class FieldsOutOfScope(FieldsNotGranted):
    """Several fields outside the client's scope, one problem each, named by `fields.<key>` for
    the schema's own fields (keys, never values); anything else asked is not echoed."""

    def __init__(self, keys: list[str], unnamed: int = 0) -> None:
        super().__init__()
        self.keys, self.unnamed = keys, unnamed

    @property
    def problems(self) -> list[Problem]:
        named = [Problem(self.code, f"This client may not read the field {key}.", f"fields.{key}") for key in self.keys]
        if self.unnamed:
            named.append(Problem(self.code, "Not a field this client may read.", "fields"))
        return named


class InvalidCursor(PartnerError):
    code = "invalid_cursor"
    message = "This cursor is not valid for this client and purpose; start again without one."
    param_name = "cursor"
