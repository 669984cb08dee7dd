"""Typed errors of the rights services. Codes are part of the API contract; messages never echo
a submitted value."""

from enum import StrEnum

from vault.errors import ApplicationError, ErrorKind


class RightsCode(StrEnum):
    REAUTHENTICATION_REQUIRED = "reauthentication_required"
    MFA_REQUIRED = "mfa_required"
    CONFIRMATION_REQUIRED = "confirmation_required"
    ERASURE_PENDING = "erasure_pending"
    REQUEST_NOT_OPEN = "request_not_open"
    GRACE_PERIOD_OVER = "grace_period_over"
    NOT_CANCELLABLE = "not_cancellable"
    EXPORT_EXPIRED = "export_expired"
    EXPORT_NOT_READY = "export_not_ready"
    PERSON_ERASED = "person_erased"
    INVALID_TRANSITION = "invalid_transition"
    REASON_REQUIRED = "reason_required"
    EXTENSION_TOO_LONG = "extension_too_long"
    NOTHING_TO_OBJECT_TO = "nothing_to_object_to"
    FIELD_EDITABLE = "field_editable"
    LEGAL_HOLD = "legal_hold"


class RightsError(ApplicationError):
    """Base of the rights errors."""


class ReauthenticationRequired(RightsError):
    kind = ErrorKind.FORBIDDEN
    code = RightsCode.REAUTHENTICATION_REQUIRED
    message = "Confirm it is you: sign in again (reauthenticate) within the last few minutes, then retry."


class MfaRequired(RightsError):
    kind = ErrorKind.FORBIDDEN
    code = RightsCode.MFA_REQUIRED
    message = "Confirm it is you with your second factor (reauthenticate with MFA), then retry."


class ConfirmationRequired(RightsError):
    code = RightsCode.CONFIRMATION_REQUIRED
    message = "Erasure cannot be undone once it runs: confirm it explicitly."
    param_name = "confirm"


class ErasurePending(RightsError):
    kind = ErrorKind.CONFLICT
    code = RightsCode.ERASURE_PENDING
    message = "An erasure request is already pending; cancel it or wait for it to run."
    param_name = "kind"


class RequestNotFound(RightsError):
    kind = ErrorKind.NOT_FOUND
    code = "not_found"
    message = "No such request."


class RequestNotOpen(RightsError):
    kind = ErrorKind.CONFLICT
    code = RightsCode.REQUEST_NOT_OPEN
    message = "This request is closed (completed, rejected or cancelled)."


class GracePeriodOver(RightsError):
    kind = ErrorKind.CONFLICT
    code = RightsCode.GRACE_PERIOD_OVER
    message = "The grace period of this erasure is over: it can no longer be cancelled."


class NotCancellable(RightsError):
    kind = ErrorKind.CONFLICT
    code = RightsCode.NOT_CANCELLABLE
    message = "Only an open request that has not started can be cancelled."


class ExportExpired(RightsError):
    kind = ErrorKind.GONE
    code = RightsCode.EXPORT_EXPIRED
    message = "This export has expired and was deleted; ask for a new one."


class ExportNotReady(RightsError):
    kind = ErrorKind.CONFLICT
    code = RightsCode.EXPORT_NOT_READY
    message = "This export is still being prepared."


class PersonErased(RightsError):
    kind = ErrorKind.GONE
    code = RightsCode.PERSON_ERASED
    message = "This person was erased; no request can be made about them."


class InvalidTransition(RightsError):
    kind = ErrorKind.CONFLICT
    code = RightsCode.INVALID_TRANSITION
    message = "The request's status does not allow this step."
    param_name = "action"


class ReasonRequired(RightsError):
    code = RightsCode.REASON_REQUIRED
    message = "Give a reason; the person will see it."
    param_name = "reason"


class ExtensionTooLong(RightsError):
    code = RightsCode.EXTENSION_TOO_LONG
    message = "A deadline may be extended by at most two months (GDPR Art. 12(3))."
    param_name = "months"


class NothingToObjectTo(RightsError):
    code = RightsCode.NOTHING_TO_OBJECT_TO
    message = "Name at least one purpose based on legitimate interest."
    param_name = "purposes"


class FieldEditable(RightsError):
    code = RightsCode.FIELD_EDITABLE
    message = "You can correct this field yourself on your profile; no request is needed."
    param_name = "field"


class LegalHold(RightsError):
    kind = ErrorKind.CONFLICT
    code = RightsCode.LEGAL_HOLD
    message = "A legal hold pauses this erasure."
