"""Typed errors of the partners API. Codes are part of the API contract; messages never echo a
submitted value."""

from enum import StrEnum

from vault.errors import ApplicationError, ErrorKind


class PartnerCode(StrEnum):
    PURPOSE_NOT_GRANTED = "purpose_not_granted"
    FIELDS_NOT_GRANTED = "fields_not_granted"
    UNKNOWN_PERSON = "unknown_person"
    INVALID_CLIENT = "invalid_client"
    INVALID_DEFINITION = "invalid_definition"
    SEGMENT_NOT_FOUND = "segment_not_found"
    SEGMENT_NOT_READY = "segment_not_ready"
    INVALID_CURSOR = "invalid_cursor"
    STALE_CURSOR = "stale_cursor"
    INVALID_EXPORT = "invalid_export"


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


class InvalidDefinition(PartnerError):
    """A segment definition that is not well formed; `param` names the bad part
    (`definition.all.2.values.0`)."""

    code = PartnerCode.INVALID_DEFINITION
    message = "The segment definition is not valid."
    param_name = "definition"


class SegmentNotFound(PartnerError):
    """No such segment of this client (another client's is no different)."""

    kind = ErrorKind.NOT_FOUND
    code = PartnerCode.SEGMENT_NOT_FOUND
    message = "No such segment."
    param_name = "segment"


class SegmentNotReady(PartnerError):
    """The segment has no standing members to export: never computed, failed, or expired."""

    kind = ErrorKind.CONFLICT
    code = PartnerCode.SEGMENT_NOT_READY
    message = "The segment has no members ready to export; refresh it and wait until it is ready."
    param_name = "segment"


class InvalidCursor(PartnerError):
    code = PartnerCode.INVALID_CURSOR
    message = "Not a cursor this API gave this client."
    param_name = "cursor"


class StaleCursor(PartnerError):
    """The segment was computed anew since the cursor was given: start again without one."""

    kind = ErrorKind.CONFLICT
    code = PartnerCode.STALE_CURSOR
    message = "The segment was computed anew since this cursor was given; start again without a cursor."
    param_name = "cursor"


class InvalidExport(PartnerError):
    code = PartnerCode.INVALID_EXPORT
    message = "The export request is not valid."
