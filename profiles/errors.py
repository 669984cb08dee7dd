"""Typed errors of the profile services and the access gate. Codes are part of the API contract;
messages never echo a submitted value (it may be personal). Raised before anything is written."""

from enum import StrEnum

from vault.errors import ApplicationError, ErrorKind


class ProfileCode(StrEnum):
    """The stable codes of this app's errors: part of the API contract."""

    UNKNOWN_FIELD = "unknown_field"
    FIELD_DEPRECATED = "field_deprecated"
    INVALID_VALUE = "invalid_value"
    VALUE_TOO_LONG = "value_too_long"
    SOURCE_NOT_ALLOWED = "source_not_allowed"
    UNKNOWN_KIND = "unknown_kind"
    INVALID_DEFINITION = "invalid_definition"
    ACCESS_DENIED = "access_denied"
    FIELD_NOT_FOR_PURPOSE = "field_not_for_purpose"
    CONSENT_REQUIRED = "consent_required"
    PROCESSING_RESTRICTED = "processing_restricted"
    PERSON_ERASED = "person_erased"
    MERGE_NOT_POSSIBLE = "merge_not_possible"
    FIELD_NOT_EDITABLE = "field_not_editable"
    FIELD_NOT_SEARCHABLE = "field_not_searchable"


class ProfileError(ApplicationError):
    """Base of the profile errors: `code` is the stable code, `param_name` the input blamed."""


class UnknownField(ProfileError):
    code = ProfileCode.UNKNOWN_FIELD
    message = "No profile field has this key."


class FieldDeprecated(ProfileError):
    code = ProfileCode.FIELD_DEPRECATED
    message = "This field is deprecated: it takes no new values."


class InvalidValue(ProfileError):
    """A value of the wrong type, outside the field's choices, or otherwise malformed."""

    code = ProfileCode.INVALID_VALUE
    message = "Not a valid value for this field."


class ValueTooLong(ProfileError):
    code = ProfileCode.VALUE_TOO_LONG
    message = "The value is longer than this field accepts."


class SourceNotAllowed(ProfileError):
    code = ProfileCode.SOURCE_NOT_ALLOWED
    message = "This field does not accept values from this source."
    param_name = "source"


class UnknownKind(ProfileError):
    code = ProfileCode.UNKNOWN_KIND
    message = "No document or event kind has this slug."
    param_name = "kind"


class InvalidDefinition(ProfileError):
    code = ProfileCode.INVALID_DEFINITION
    message = "This field definition is not valid."


class AccessDenied(ProfileError):
    """The gate refused: the purpose may not use a field, or the person has not consented."""

    kind = ErrorKind.FORBIDDEN
    code = ProfileCode.ACCESS_DENIED
    message = "This purpose may not use this data."


class FieldNotForPurpose(AccessDenied):
    code = ProfileCode.FIELD_NOT_FOR_PURPOSE
    message = "This field may not be used for this purpose."


class ConsentRequired(AccessDenied):
    code = ProfileCode.CONSENT_REQUIRED
    message = "The person has not consented to this purpose."
    param_name = "purpose"


class ProcessingRestricted(AccessDenied):
    code = ProfileCode.PROCESSING_RESTRICTED
    message = "The person has restricted the processing of their data."


class PersonErased(ProfileError):
    kind = ErrorKind.GONE
    code = ProfileCode.PERSON_ERASED
    message = "This person's data was erased."


class MergeError(ProfileError):
    code = ProfileCode.MERGE_NOT_POSSIBLE
    message = "These profiles cannot be merged."


class FieldNotEditable(AccessDenied):
    code = ProfileCode.FIELD_NOT_EDITABLE
    message = "This field cannot be changed here; ask the brand's privacy team to rectify it."


class UnknownFieldNotFound(UnknownField):
    """An unknown field named in the URL is a missing resource (404), not bad input."""

    kind = ErrorKind.NOT_FOUND


class FieldNotSearchable(ProfileError):
    code = ProfileCode.FIELD_NOT_SEARCHABLE
    message = "This field has no lookup index: it cannot be searched by value."
    param_name = "field"
