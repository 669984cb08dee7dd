"""Typed errors of the consent services and selectors. Their codes are part of the API contract;
messages never echo the submitted value (it may be personal). Raised before anything is written."""

from vault.api import ApplicationError


class ConsentError(ApplicationError):
    """Base of the consent errors: `default_code` is the stable code, `param_name` the input blamed."""

    param_name = ""

    def __init__(self, message: str | None = None, *, param: str | None = None) -> None:
        super().__init__(message, param=param or self.param_name or None)


class UnknownPurpose(ConsentError):
    default_code = "unknown_purpose"
    default_detail = "No purpose has this slug."
    param_name = "purpose"


class NotConsentBased(ConsentError):
    default_code = "not_consent_based"
    default_detail = "This purpose rests on a contract or a legal obligation: there is no choice to record."
    param_name = "purpose"


class NoCurrentPolicy(ConsentError):
    default_code = "no_current_policy"
    default_detail = "This purpose has no published policy yet."
    param_name = "purpose"


class UnknownPolicyVersion(ConsentError):
    default_code = "unknown_policy_version"
    default_detail = "This purpose has no such policy version."
    param_name = "policy_version"


class PolicyNotCurrent(ConsentError):
    default_code = "policy_not_current"
    default_detail = "This policy version is not in force (not yet published, or superseded)."
    param_name = "policy_version"


class InvalidPolicyVersion(ConsentError):
    """A new version that cannot be published as given (duplicate label, backdated, empty)."""

    default_code = "invalid_policy_version"
    default_detail = "This policy version cannot be published."
    param_name = "policy_version"


class InvalidMethod(ConsentError):
    default_code = "invalid_method"
    default_detail = "This collection method is not allowed here."
    param_name = "method"


class DoubleOptInRequired(ConsentError):
    default_code = "double_opt_in_required"
    default_detail = "This purpose needs a double opt-in: only the confirmation grants it."
    param_name = "method"


class InvalidJurisdiction(ConsentError):
    default_code = "invalid_jurisdiction"
    default_detail = "Not an ISO 3166 code such as DE or US-CA."
    param_name = "jurisdiction"


class InvalidEvidence(ConsentError):
    default_code = "invalid_evidence"
    default_detail = "The evidence is not well-formed."
    param_name = "evidence"


class GlobalPrivacyControlOptOut(ConsentError):
    """The request carries Global Privacy Control: a sale/sharing purpose cannot be granted in it,
    except by an explicit override the person makes in the portal."""

    default_code = "gpc_opt_out"
    default_detail = "Your browser sends Global Privacy Control: this sharing purpose stays off unless you override it."
    param_name = "purpose"


class UnknownPurposeNotFound(UnknownPurpose):
    """An unknown purpose named in the URL is a missing resource (404), not bad input."""

    status_code = 404


class ParentalConsentRequired(ConsentError):
    """Below the age of digital consent, a consent-based purpose needs a parent's consent."""

    status_code = 403
    default_code = "parental_consent_required"
    default_detail = "Below the age of digital consent: a parent or guardian has to consent for you."
    param_name = "purpose"


class AgeUnknown(ConsentError):
    """Consent is given alone only at or above the age of digital consent, so the age must be known."""

    default_code = "age_unknown"
    default_detail = "Tell us your date of birth first: below a certain age a parent or guardian has to consent."
    param_name = "birth_date"


class AlreadyGranted(ConsentError):
    default_code = "already_granted"
    default_detail = "This consent is already given."
    param_name = "purpose"


class InvalidLink(ConsentError):
    """A confirmation link that was altered, made for another use, or replaced by a newer one."""

    default_code = "invalid_link"
    default_detail = "This confirmation link is not valid."
    param_name = "token"


class LinkExpired(ConsentError):
    default_code = "link_expired"
    default_detail = "This confirmation link has expired: ask for a new one."
    param_name = "token"


class ParentalConsentNotNeeded(ConsentError):
    default_code = "parental_consent_not_needed"
    default_detail = "Parental consent is for people below the age of digital consent."
    param_name = "birth_date"


class InvalidParentEmail(ConsentError):
    default_code = "invalid_parent_email"
    default_detail = "A parent or guardian's own address is needed, not the account's."
    param_name = "parent_email"


class NoAccount(ConsentError):
    default_code = "no_account"
    default_detail = "There is no active account to send the confirmation to."


class MailNotSent(ConsentError):
    """The confirmation mail could not be handed to the mail server: nothing was recorded."""

    status_code = 503
    default_code = "mail_not_sent"
    default_detail = "The confirmation e-mail could not be sent; nothing was changed. Please try again later."
