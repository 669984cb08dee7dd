"""The overview: what the vault holds about the person at a glance."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.selectors import account_security
from consent.selectors import consent_states
from portal.scope import portal_subject
from profiles.models import Source
from profiles.selectors import profile_listing


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "portal/home.html")
    subject = portal_subject(request)
    listing = profile_listing(subject_id=subject)
    held = [item for item in listing if item["value"] is not None]
    states = consent_states(subject_id=subject)
    choosable = [state for state in states if state.state != "not_applicable"]
    context = {
        "held_count": len(held),
        "field_count": len(listing),
        "sources": sorted({str(Source(item["source"]).label) for item in held if item["source"] in Source.values}),
        "granted": [state for state in choosable if state.is_granted],
        "needs_renewal": [state for state in choosable if state.state == "needs_renewal"],
        "choosable_count": len(choosable),
        "mfa_enabled": account_security(subject_id=subject).has_second_factor,
    }
    return render(request, "portal/home.html", context)
