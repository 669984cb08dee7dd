"""Typed errors of the consent services and selectors. Their codes are part of the API contract;
messages never echo the submitted value (it may be personal). Raised before anything is written."""

from enum import StrEnum

from vault.errors import ApplicationError, ErrorKind


class ConsentCode(StrEnum):
    """The stable codes of this app's errors: part of the API contract."""

    UNKNOWN_PURPOSE = "unknown_purpose"
    NOT_CONSENT_BASED = "not_consent_based"
    NO_CURRENT_POLICY = "no_current_policy"
    UNKNOWN_POLICY_VERSION = "unknown_policy_version"
    POLICY_NOT_CURRENT = "policy_not_current"
    INVALID_POLICY_VERSION = "invalid_policy_version"
    INVALID_METHOD = "invalid_method"
    DOUBLE_OPT_IN_REQUIRED = "double_opt_in_required"
    INVALID_JURISDICTION = "invalid_jurisdiction"
    INVALID_EVIDENCE = "invalid_evidence"
    GPC_OPT_OUT = "gpc_opt_out"
    PARENTAL_CONSENT_REQUIRED = "parental_consent_required"
    AGE_UNKNOWN = "age_unknown"
    INVALID_BIRTH_DATE = "invalid_birth_date"
    BIRTH_DATE_MISMATCH = "birth_date_mismatch"
    ALREADY_GRANTED = "already_granted"
    INVALID_LINK = "invalid_link"
    LINK_EXPIRED = "link_expired"
    LINK_USED = "link_used"
    PARENTAL_CONSENT_NOT_NEEDED = "parental_consent_not_needed"
    INVALID_PARENT_EMAIL = "invalid_parent_email"
    NO_ACCOUNT = "no_account"
    MAIL_NOT_SENT = "mail_not_sent"


class ConsentError(ApplicationError):
    """Base of the consent errors: `code` is the stable code, `param_name` the input blamed."""


class UnknownPurpose(ConsentError):
    code = ConsentCode.UNKNOWN_PURPOSE
    message = "No purpose has this slug."
    param_name = "purpose"


class NotConsentBased(ConsentError):
    code = ConsentCode.NOT_CONSENT_BASED
    message = "This purpose rests on a contract or a legal obligation: there is no choice to record."
    param_name = "purpose"


class NoCurrentPolicy(ConsentError):
    code = ConsentCode.NO_CURRENT_POLICY
    message = "This purpose has no published policy yet."
    param_name = "purpose"


class UnknownPolicyVersion(ConsentError):
    code = ConsentCode.UNKNOWN_POLICY_VERSION
    message = "This purpose has no such policy version."
    param_name = "policy_version"


class PolicyNotCurrent(ConsentError):
    code = ConsentCode.POLICY_NOT_CURRENT
    message = "This policy version is not in force (not yet published, or superseded)."
    param_name = "policy_version"


class InvalidPolicyVersion(ConsentError):
    """A new version that cannot be published as given (duplicate label, backdated, empty)."""

    code = ConsentCode.INVALID_POLICY_VERSION
    message = "This policy version cannot be published."
    param_name = "policy_version"


class InvalidMethod(ConsentError):
    code = ConsentCode.INVALID_METHOD
    message = "This collection method is not allowed here."
    param_name = "method"


class DoubleOptInRequired(ConsentError):
    code = ConsentCode.DOUBLE_OPT_IN_REQUIRED
    message = "This purpose needs a double opt-in: only the confirmation grants it."
    param_name = "method"


class InvalidJurisdiction(ConsentError):
    code = ConsentCode.INVALID_JURISDICTION
    message = "Not an ISO 3166 code such as DE or US-CA."
    param_name = "jurisdiction"


class InvalidEvidence(ConsentError):
    code = ConsentCode.INVALID_EVIDENCE
    message = "The evidence is not well-formed."
    param_name = "evidence"


class GlobalPrivacyControlOptOut(ConsentError):
    """The request carries Global Privacy Control: a sale/sharing purpose cannot be granted in it,
    except by an explicit override the person makes in the portal."""

    code = ConsentCode.GPC_OPT_OUT
    message = "Your browser sends Global Privacy Control: this sharing purpose stays off unless you override it."
    param_name = "purpose"


class UnknownPurposeNotFound(UnknownPurpose):
    """An unknown purpose named in the URL is a missing resource (404), not bad input."""

    kind = ErrorKind.NOT_FOUND


class ParentalConsentRequired(ConsentError):
    """Below the age of digital consent, a consent-based purpose needs a parent's consent."""

    kind = ErrorKind.FORBIDDEN
    code = ConsentCode.PARENTAL_CONSENT_REQUIRED
    message = "Below the age of digital consent: a parent or guardian has to consent for you."
    param_name = "purpose"


class AgeUnknown(ConsentError):
    """Consent is given alone only at or above the age of digital consent, so the age must be known."""

    code = ConsentCode.AGE_UNKNOWN
    message = "Tell us your date of birth first: below a certain age a parent or guardian has to consent."
    param_name = "birth_date"


class InvalidBirthDate(ConsentError):
    """A date of birth no one alive has: in the future, or before 1900 (`birth_date_check`)."""

    code = ConsentCode.INVALID_BIRTH_DATE
    message = "Not a possible date of birth."
    param_name = "birth_date"


class BirthDateMismatch(ConsentError):
    """A declared date of birth that differs from the one in the person's profile. The stored
    one decides; a correction is a rectification of the profile, validated and audited there."""

    kind = ErrorKind.CONFLICT
    code = ConsentCode.BIRTH_DATE_MISMATCH
    message = (
        "This date of birth differs from the one in your profile. If your profile is wrong, "
        "correct it there first; then send the same date, or none."
    )
    param_name = "birth_date"


class AlreadyGranted(ConsentError):
    code = ConsentCode.ALREADY_GRANTED
    message = "This consent is already given."
    param_name = "purpose"


class InvalidLink(ConsentError):
    """A confirmation link that was altered, made for another use, or replaced by a newer one."""

    code = ConsentCode.INVALID_LINK
    message = "This confirmation link is not valid."
    param_name = "token"


class LinkReplaced(InvalidLink):
    """A link never followed, made void by a later choice or a newer link for the same purpose."""

    message = "This link was replaced by a later choice or a newer link; it records nothing."


class LinkExpired(ConsentError):
    code = ConsentCode.LINK_EXPIRED
    message = "This confirmation link has expired: ask for a new one."
    param_name = "token"


class LinkUsed(ConsentError):
    """A confirmation link that already granted, followed again after the person's choice
    changed: it grants nothing more (`consent_link_state` tells what the choice is now)."""

    kind = ErrorKind.CONFLICT
    code = ConsentCode.LINK_USED
    message = "This link was already used; a later choice replaced what it recorded."
    param_name = "token"


class ParentalConsentNotNeeded(ConsentError):
    code = ConsentCode.PARENTAL_CONSENT_NOT_NEEDED
    message = "Parental consent is for people below the age of digital consent."
    param_name = "birth_date"


class InvalidParentEmail(ConsentError):
    code = ConsentCode.INVALID_PARENT_EMAIL
    message = "A parent or guardian's own address is needed, not the account's."
    param_name = "parent_email"


class NoAccount(ConsentError):
    code = ConsentCode.NO_ACCOUNT
    message = "There is no active account to send the confirmation to."


class MailNotSent(ConsentError):
    """The confirmation mail could not be handed to the mail server: nothing was recorded."""

    kind = ErrorKind.UNAVAILABLE
    code = ConsentCode.MAIL_NOT_SENT
    message = "The confirmation e-mail could not be sent; nothing was changed. Please try again later."
