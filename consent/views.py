"""The consent app's public pages: published policy texts, and the double opt-in and parental
links sent by mail. The person's own consent page is in the portal."""

from contextlib import suppress

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from consent.errors import ConsentError
from consent.gpc import request_evidence
from consent.models import Method, PolicyVersion
from consent.services import consent_link_confirm, consent_link_state
from vault.api import KIND_STATUS


def policy_text(request: HttpRequest, purpose: str, label: str) -> HttpResponse:
    """A published policy text, as receipts link to it: public, with its content hash."""
    version = get_object_or_404(
        PolicyVersion.objects.select_related("purpose"),
        purpose__slug=purpose,
        label=label,
        effective_from__lte=timezone.now(),
    )
    return render(request, "consent/policy.html", {"version": version})


def _confirm(request: HttpRequest, token: str, method: str) -> HttpResponse:
    """GET shows what is being confirmed; only the POST of its button grants, so that mail
    scanners following links cannot consent for anyone. A link that cannot grant (used and since
    replaced by a later choice, replaced before use, expired) says so, and what the person's
    choice is now, on GET and POST alike, with the status a POST meets; a link whose grant
    stands says that it is recorded, and since when."""
    context: dict[str, object] = {"method": method, "parental": method == Method.PARENTAL_CONSENT}
    try:
        link = consent_link_state(token=token, method=method)
    except ConsentError as error:  # not a link of ours for this use
        return _cannot(request, context, error)
    context.update(link=link, event=link.request)
    refusal = link.refusal()
    if request.method == "POST" and refusal is None and not link.stands:
        try:
            context["event"] = consent_link_confirm(token=token, method=method, evidence=request_evidence(request))
        except ConsentError as error:  # a choice came in meanwhile, or the policy changed
            refusal = error
            with suppress(ConsentError):
                context["link"] = consent_link_state(token=token, method=method)
        else:
            context["done"] = True
    if refusal is not None:
        return _cannot(request, context, refusal)
    return render(request, "consent/confirm.html", context)


def _cannot(request: HttpRequest, context: dict[str, object], error: ConsentError) -> HttpResponse:
    context.update(error=error.message, code=error.code)
    return render(request, "consent/confirm.html", context, status=KIND_STATUS[error.kind])


@require_http_methods(["GET", "POST"])
def confirm_double_opt_in(request: HttpRequest, token: str) -> HttpResponse:
    return _confirm(request, token, Method.DOUBLE_OPT_IN)


@require_http_methods(["GET", "POST"])
def confirm_parental(request: HttpRequest, token: str) -> HttpResponse:
    return _confirm(request, token, Method.PARENTAL_CONSENT)
