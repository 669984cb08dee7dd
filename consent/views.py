import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from rest_framework.exceptions import ValidationError

from consent.errors import ConsentError
from consent.gpc import request_evidence
from consent.models import ConsentEvent, Method, PolicyVersion
from consent.receipts import RECEIPT_EVENTS, consent_receipt_jws
from consent.selectors import consent_states
from consent.services import (
    consent_grant,
    consent_link_confirm,
    consent_link_request,
    consent_request,
    consent_withdraw,
)
from profiles.errors import ProfileError
from profiles.gate import RIGHTS_PURPOSE, Actor, profile_age, profile_write
from profiles.models import Source


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
        context["error"] = error.detail
        context["code"] = error.default_code
        return render(request, "consent/confirm.html", context, status=400)
    return render(request, "consent/confirm.html", context)


@require_http_methods(["GET", "POST"])
def confirm_double_opt_in(request: HttpRequest, token: str) -> HttpResponse:
    return _confirm(request, token, Method.DOUBLE_OPT_IN)


@require_http_methods(["GET", "POST"])
def confirm_parental(request: HttpRequest, token: str) -> HttpResponse:
    return _confirm(request, token, Method.PARENTAL_CONSENT)


# --- The person's consent page in the portal ------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def portal_consent(request: HttpRequest) -> HttpResponse:
    """Where a person sees, gives and withdraws each consent, and downloads their receipts.
    The same services as the API: the rules cannot drift between the two."""
    subject_id = request.user.pk
    assert isinstance(subject_id, uuid.UUID)  # login_required
    gpc = getattr(request, "gpc", False)
    if request.method == "POST":
        purpose, action = request.POST.get("purpose", ""), request.POST.get("action", "")
        evidence = request_evidence(request)
        try:
            if action == "grant":
                consent_grant(
                    subject_id=subject_id,
                    purpose=purpose,
                    method=Method.WEB_FORM,
                    evidence=evidence,
                    gpc=gpc,
                    gpc_override=request.POST.get("gpc_override") == "yes",
                )
                messages.success(request, "Thank you: your consent is recorded.")
            elif action == "request":
                consent_request(subject_id=subject_id, purpose=purpose, evidence=evidence, gpc=gpc)
                messages.success(request, "We sent you an e-mail: follow its link to confirm.")
            elif action == "birth_date":
                profile_write(
                    subject_id=subject_id,
                    values={"birth_date": request.POST.get("birth_date", "")},
                    source=Source.SELF_SERVICE,
                    purpose=RIGHTS_PURPOSE,
                    actor=Actor.person(subject_id),
                )
                messages.success(request, "Thank you: your date of birth is saved in your profile.")
            elif action == "withdraw":
                consent_withdraw(subject_id=subject_id, purpose=purpose, method=Method.WEB_FORM, evidence=evidence)
                messages.success(request, "Withdrawn. We no longer use your data for this.")
            else:
                messages.error(request, "Unknown action.")
        except (ConsentError, ProfileError) as error:
            messages.error(request, str(error.detail))
        except ValidationError as error:  # a profile value that is not valid, one message per field
            details = error.get_full_details()
            for problems in details.values() if isinstance(details, dict) else [details]:
                messages.error(request, str(problems[0]["message"] if isinstance(problems, list) else problems))
        return redirect("consent-portal")
    events = (
        ConsentEvent.objects.filter(subject_id=subject_id, event_type__in=RECEIPT_EVENTS)
        .select_related("purpose", "policy_version")
        .order_by("-occurred_at", "-seq")[:50]
    )
    context = {
        "states": consent_states(subject_id=subject_id),
        "events": events,
        "gpc": gpc,
        "age_known": profile_age(subject_id=subject_id)[0] is not None,
    }
    return render(request, "consent/portal.html", context)


@login_required
@require_http_methods(["GET"])
def portal_receipt(request: HttpRequest, event_id: uuid.UUID) -> HttpResponse:
    """The signed receipt of one of the person's own choices, as a file to keep."""
    event = get_object_or_404(
        ConsentEvent.objects.select_related("purpose", "policy_version"),
        id=event_id,
        subject_id=request.user.pk,
        event_type__in=RECEIPT_EVENTS,
    )
    response = HttpResponse(consent_receipt_jws(event), content_type="application/jose")
    response["Content-Disposition"] = f'attachment; filename="consent-receipt-{event.id}.jws"'
    return response
