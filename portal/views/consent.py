"""The person's consent page: see, give and withdraw each consent, download receipts. The same
services as the API, so the rules cannot drift between the two."""

import uuid
from urllib.parse import quote, urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from consent.errors import ParentalConsentRequired
from consent.gpc import request_evidence
from consent.models import Method
from consent.receipts import consent_receipt_jws
from consent.selectors import consent_receipt_event, consent_receipt_events, consent_states
from consent.services import consent_grant, consent_parental_request, consent_request, consent_withdraw
from portal.errors import error_messages_add
from portal.scope import portal_subject
from profiles.gate import RIGHTS_PURPOSE, Actor, profile_write
from profiles.models import Source
from profiles.selectors import profile_fields_held
from vault.errors import ApplicationError


@login_required
@require_http_methods(["GET", "POST"])
def portal_consent(request: HttpRequest) -> HttpResponse:
    """Where a person sees, gives and withdraws each consent, and downloads their receipts.
    The same services as the API: the rules cannot drift between the two."""
    subject_id = portal_subject(request)
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
            elif action == "parental":
                parent_email = request.POST.get("parent_email", "").strip()
                try:
                    validate_email(parent_email)
                except ValidationError:
                    messages.error(request, "Please enter your parent's or guardian's e-mail address.")
                    return redirect(_ask_parent_url(purpose))
                consent_parental_request(
                    subject_id=subject_id, purpose=purpose, parent_email=parent_email, evidence=evidence, gpc=gpc
                )
                messages.success(
                    request, "We sent your parent or guardian an e-mail: once they agree, your choice is recorded."
                )
            elif action == "withdraw":
                consent_withdraw(subject_id=subject_id, purpose=purpose, method=Method.WEB_FORM, evidence=evidence)
                messages.success(request, "Withdrawn. We no longer use your data for this.")
            else:
                messages.error(request, "Unknown action.")
        except ParentalConsentRequired as error:
            # The way forward for a minor: ask a parent or guardian, right where they tried.
            error_messages_add(request, error)
            return redirect(_ask_parent_url(purpose))
        except ApplicationError as error:
            error_messages_add(request, error)
        return redirect("portal:consent")
    events = consent_receipt_events(subject_id=subject_id)
    context = {
        "states": consent_states(subject_id=subject_id),
        "events": events,
        "gpc": gpc,
        "ask_parent": request.GET.get("ask_parent", ""),
        # Whether to ask for the date of birth: known from the profile without reading it.
        "age_known": "birth_date" in profile_fields_held(subject_id=subject_id, keys=["birth_date"]),
    }
    return render(request, "portal/consent.html", context)


def _ask_parent_url(purpose: str) -> str:
    return f"{reverse('portal:consent')}?{urlencode({'ask_parent': purpose})}#purpose-{quote(purpose)}"


@login_required
@require_http_methods(["GET"])
def portal_receipt(request: HttpRequest, event_id: uuid.UUID) -> HttpResponse:
    """The signed receipt of one of the person's own choices, as a file to keep."""
    event = consent_receipt_event(subject_id=portal_subject(request), event_id=event_id)
    if event is None:
        raise Http404
    response = HttpResponse(consent_receipt_jws(event), content_type="application/jose")
    response["Content-Disposition"] = f'attachment; filename="consent-receipt-{event.id}.jws"'
    return response
