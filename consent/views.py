"""The consent app's public pages: published policy texts, and the double opt-in and parental
links sent by mail. The person's own consent page is in the portal."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from consent.errors import ConsentError
from consent.gpc import request_evidence
from consent.models import Method, PolicyVersion
from consent.services import consent_link_confirm, consent_link_request


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
    scanners following links cannot consent for anyone."""
    context = {"method": method, "parental": method == Method.PARENTAL_CONSENT}
    try:
        if request.method == "POST":
            context["event"] = consent_link_confirm(token=token, method=method, evidence=request_evidence(request))
            context["done"] = True
        else:
            context["event"] = consent_link_request(token=token, method=method)
    except ConsentError as error:
        context["error"] = error.message
        context["code"] = error.code
        return render(request, "consent/confirm.html", context, status=400)
    return render(request, "consent/confirm.html", context)


@require_http_methods(["GET", "POST"])
def confirm_double_opt_in(request: HttpRequest, token: str) -> HttpResponse:
    return _confirm(request, token, Method.DOUBLE_OPT_IN)


@require_http_methods(["GET", "POST"])
def confirm_parental(request: HttpRequest, token: str) -> HttpResponse:
    return _confirm(request, token, Method.PARENTAL_CONSENT)
