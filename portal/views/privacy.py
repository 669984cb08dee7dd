"""The privacy centre and "who accessed my data" (audit entries about the person)."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from consent.selectors import consent_states
from portal.scope import portal_subject
from profiles.selectors import person_fields
from vault.audit.selectors import audit_entries_about
from vault.models import AuditActorType


@login_required
@require_http_methods(["GET"])
def privacy(request: HttpRequest) -> HttpResponse:
    """What the person's rights requests will offer. The rights services are a later issue:
    until they land the page says so, rather than showing buttons that do nothing."""
    return render(request, "portal/privacy.html", {"controller": settings.VAULT_CONTROLLER})


# --- Who accessed my data -------------------------------------------------------------------------
_ACTIONS = {
    "profile.read": gettext_lazy("Read profile values"),
    "profile.write": gettext_lazy("Changed profile values"),
    "profile.history_read": gettext_lazy("Read earlier values"),
    "profile.documents_read": gettext_lazy("Read documents"),
    "profile.events_read": gettext_lazy("Read activity"),
    "profile.document_write": gettext_lazy("Stored a document"),
    "profile.event_write": gettext_lazy("Recorded activity"),
}
_ACTORS = {
    AuditActorType.PARTNER: gettext_lazy("Partner"),
    AuditActorType.STAFF: gettext_lazy("Staff member"),
    AuditActorType.SYSTEM: gettext_lazy("Automated process"),
    AuditActorType.PERSON: gettext_lazy("Another person"),
}


@login_required
@require_http_methods(["GET"])
def access_log(request: HttpRequest) -> HttpResponse:
    subject = portal_subject(request)
    include_own = request.GET.get("own") == "1"
    try:
        number = int(request.GET.get("page", "1"))
    except ValueError:
        number = 1
    page = audit_entries_about(subject_id=subject, page=number, exclude_own=not include_own)
    purposes = {state.purpose: state.name for state in consent_states(subject_id=subject)}
    labels = {definition.key: definition.label for definition in person_fields()}
    entries = [
        {
            "when": entry.when,
            "action": _ACTIONS.get(entry.action, entry.action),
            "fields": [labels.get(name, name) for name in entry.fields],
            "purpose": purposes.get(entry.purpose, entry.purpose),
            "actor": _("You") if entry.by_self else _ACTORS.get(entry.actor_type, entry.actor_type),
            "actor_name": entry.actor_name,
        }
        for entry in page.object_list
    ]
    context = {"page": page, "entries": entries, "include_own": include_own, "own_param": "1" if include_own else ""}
    return render(request, "portal/access_log.html", context)
