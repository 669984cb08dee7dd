"""Typed errors of the profile services and the access gate. Codes are part of the API contract;
messages never echo a submitted value (it may be personal). Raised before anything is written."""

from vault.api import ApplicationError


class ProfileError(ApplicationError):
    """Base of the profile errors: `default_code` is the stable code, `param_name` the input blamed."""

    param_name = ""

    def __init__(self, message: str | None = None, *, param: str | None = None) -> None:
        super().__init__(message, param=param or self.param_name or None)


class UnknownField(ProfileError):
    default_code = "unknown_field"
    default_detail = "No profile field has this key."


class FieldDeprecated(ProfileError):
    default_code = "field_deprecated"
    default_detail = "This field is deprecated: it takes no new values."


class InvalidValue(ProfileError):
    """A value of the wrong type, outside the field's choices, or otherwise malformed."""

    default_code = "invalid_value"
    default_detail = "Not a valid value for this field."


class ValueTooLong(ProfileError):
    default_code = "value_too_long"
    default_detail = "The value is longer than this field accepts."


class SourceNotAllowed(ProfileError):
    default_code = "source_not_allowed"
    default_detail = "This field does not accept values from this source."
    param_name = "source"


class UnknownKind(ProfileError):
    default_code = "unknown_kind"
    default_detail = "No document or event kind has this slug."
    param_name = "kind"


class InvalidDefinition(ProfileError):
    default_code = "invalid_definition"
    default_detail = "This field definition is not valid."


class AccessDenied(ProfileError):
    """The gate refused: the purpose may not use a field, or the person has not consented."""

    status_code = 403
    default_code = "access_denied"
    default_detail = "This purpose may not use this data."


class FieldNotForPurpose(AccessDenied):
    default_code = "field_not_for_purpose"
    default_detail = "This field may not be used for this purpose."


class ConsentRequired(AccessDenied):
    default_code = "consent_required"
    default_detail = "The person has not consented to this purpose."
    param_name = "purpose"


class ProcessingRestricted(AccessDenied):
    default_code = "processing_restricted"
    default_detail = "The person has restricted the processing of their data."


class PersonErased(ProfileError):
    status_code = 410
    default_code = "person_erased"
    default_detail = "This person's data was erased."


class MergeError(ProfileError):
    default_code = "merge_not_possible"
    default_detail = "These profiles cannot be merged."


class FieldNotEditable(AccessDenied):
    default_code = "field_not_editable"
    default_detail = "This field cannot be changed here; ask the brand's privacy team to rectify it."


class UnknownFieldNotFound(UnknownField):
    """An unknown field named in the URL is a missing resource (404), not bad input."""

    status_code = 404


class FieldNotSearchable(ProfileError):
    default_code = "field_not_searchable"
    default_detail = "This field has no lookup index: it cannot be searched by value."
    param_name = "field"
