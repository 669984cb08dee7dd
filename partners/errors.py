"""Typed errors of the partners API. Codes are part of the API contract; messages never echo a
submitted value."""

from enum import StrEnum

from vault.errors import ApplicationError, ErrorKind


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
