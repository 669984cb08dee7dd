"""Domain errors as the portal shows them: as form errors on the inputs they blame, or as
messages. The API's exception handler does the same for JSON (vault/api.py)."""

from django.contrib import messages
from django.http import HttpRequest

from vault.errors import ApplicationError


def errors_by_param(error: ApplicationError) -> dict[str | None, str]:
    """The first message about each input the error blames (None: the request as a whole)."""
    shown: dict[str | None, str] = {}
    for problem in error.problems:
        shown.setdefault(problem.param, problem.message)
    return shown


def error_messages_add(request: HttpRequest, error: ApplicationError) -> None:
    """One message per problem, for pages that answer with a redirect."""
    for problem in error.problems:
        messages.error(request, problem.message)
