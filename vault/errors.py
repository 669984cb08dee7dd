"""The one error type of the domain: raised by services and selectors, free of HTTP.

An `ApplicationError` carries a stable `code` (each app keeps its codes in an enum of its own),
the input it blames (`param`) and a `kind` that says what went wrong in words any surface can
map: the API's exception handler (vault/api.py) turns kinds into status codes and the error
envelope, the portal into form errors and messages. Messages never echo submitted values, so
personal data cannot leak through them.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class ErrorKind(StrEnum):
    INVALID = "invalid"  # the input is wrong; nothing was written
    NOT_AUTHENTICATED = "not_authenticated"
    FORBIDDEN = "forbidden"  # understood, and not allowed (consent missing, MFA required)
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # the current state does not allow it
    GONE = "gone"  # the person was erased
    TOO_LARGE = "too_large"
    UNAVAILABLE = "unavailable"  # a service we depend on (mail, a provider) did not answer


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request, as every surface shows it."""

    code: str
    message: str
    param: str | None = None


class ApplicationError(Exception):
    """A typed domain error. Subclasses set `code`, `message`, `kind` and `param_name` (the input
    blamed by default); an instance may name another message or param."""

    kind: ClassVar[ErrorKind] = ErrorKind.INVALID
    code: str = "invalid"
    message: str = "The request could not be processed."
    param_name: ClassVar[str | None] = None

    def __init__(self, message: str | None = None, *, code: str | None = None, param: str | None = None) -> None:
        self.message = message or type(self).message
        self.code = str(code or type(self).code)
        self.param = param or type(self).param_name
        super().__init__(self.message)

    @property
    def problems(self) -> list[Problem]:
        return [Problem(self.code, self.message, self.param)]


class InvalidInput(ApplicationError):
    """Several errors found at once, one per bad input (say, per profile field); nothing was
    written. Its code and message are those of the first."""

    def __init__(self, errors: Sequence[ApplicationError]) -> None:
        if not errors:
            raise ValueError("InvalidInput needs at least one error.")
        first = errors[0]
        super().__init__(first.message, code=first.code, param=first.param)
        self.errors = list(errors)

    @property
    def problems(self) -> list[Problem]:
        return [problem for error in self.errors for problem in error.problems]
