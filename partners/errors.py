"""Typed errors of the partners API. Codes are part of the API contract; messages never echo a
submitted value."""

from enum import StrEnum

from vault.errors import ApplicationError, ErrorKind, Problem


class PartnerCode(StrEnum):
    PURPOSE_NOT_GRANTED = "purpose_not_granted"
    FIELDS_NOT_GRANTED = "fields_not_granted"
    UNKNOWN_PERSON = "unknown_person"
    INVALID_CLIENT = "invalid_client"
    INVALID_EVENT = "invalid_event"
    KIND_NOT_GRANTED = "kind_not_granted"
    TOO_MANY_EVENTS = "too_many_events"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"


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


class InvalidEvent(PartnerError):
    """An event (or the batch around it) that cannot be read; `param` names the part."""

    code = PartnerCode.INVALID_EVENT
    message = "Not a valid event."


class KindNotGranted(PartnerError):
    kind = ErrorKind.FORBIDDEN
    code = PartnerCode.KIND_NOT_GRANTED
    message = "This client may not post events of this kind."
    param_name = "kind"


class TooManyEvents(PartnerError):
    kind = ErrorKind.TOO_LARGE
    code = PartnerCode.TOO_MANY_EVENTS
    message = "Too many events in one batch."
    param_name = "events"


class InvalidIdempotencyKey(PartnerError):
    code = PartnerCode.INVALID_IDEMPOTENCY_KEY
    message = "An Idempotency-Key is 1 to 255 printable ASCII characters."
    param_name = "Idempotency-Key"


class IdempotencyKeyReused(PartnerError):
    """The key was used for a different request body: 422 Unprocessable Content, as the IETF
    draft on the Idempotency-Key header says (the view answers it; `kind` is the nearest)."""

    kind = ErrorKind.CONFLICT
    code = PartnerCode.IDEMPOTENCY_KEY_REUSED
    message = "This Idempotency-Key was used for a different request."
    param_name = "Idempotency-Key"


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
