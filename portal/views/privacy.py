"""Who accessed my data: the audit entries about the person, in words. (The privacy centre
itself is the rights app's.)"""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from consent.selectors import consent_states
from portal.scope import portal_subject
from profiles.selectors import person_fields
from vault.audit.selectors import AccessEntry, audit_entries_about
from vault.models import AuditActorType

# --- Who accessed my data -------------------------------------------------------------------------
# Every audit action a person can meet about themselves, in words; a code not listed here (a new
# one) is shown as "Other processing" rather than as a raw code.
_ACTIONS = {
    "consent.grant": gettext_lazy("Recorded your consent"),
    "consent.renew": gettext_lazy("Recorded your renewed consent"),
    "consent.withdraw": gettext_lazy("Recorded your withdrawal"),
    "consent.refuse": gettext_lazy("Recorded your refusal"),
    "consent.request": gettext_lazy("Asked for a confirmation of your consent"),
    "consent.expire": gettext_lazy("An unconfirmed consent request expired"),
    "profile.read": gettext_lazy("Read profile values"),
    "profile.reveal": gettext_lazy("Revealed profile values to a staff member"),
    "staff.person_viewed": gettext_lazy("Opened your record in the staff admin (values hidden)"),
    "profile.write": gettext_lazy("Changed profile values"),
    "profile.history_read": gettext_lazy("Read earlier values"),
    "profile.documents_read": gettext_lazy("Read documents"),
    "profile.events_read": gettext_lazy("Read activity"),
    "profile.document_write": gettext_lazy("Stored a document"),
    "profile.event_write": gettext_lazy("Recorded activity"),
    "profile.import": gettext_lazy("Imported profile values"),
    "profile.merge": gettext_lazy("Merged a duplicate profile into yours"),
    "profile.merge_undo": gettext_lazy("Undid a merge of profiles"),
    "profile.reindex": gettext_lazy("Updated a search index"),
    "profile.restrict": gettext_lazy("Restricted processing"),
    "profile.restriction_lift": gettext_lazy("Lifted the restriction of processing"),
    "profile.retention_purge": gettext_lazy("Deleted data past its retention period"),
    "profile.source_purge": gettext_lazy("Deleted data a connected account brought"),
    "rights.receive": gettext_lazy("Received your request"),
    "rights.verify": gettext_lazy("Verified your request"),
    "rights.start": gettext_lazy("Started work on your request"),
    "rights.extend": gettext_lazy("Extended the deadline of your request"),
    "rights.reject": gettext_lazy("Rejected your request"),
    "rights.hold": gettext_lazy("Paused your erasure (legal hold)"),
    "rights.hold_lift": gettext_lazy("Lifted the legal hold on your erasure"),
    "rights.cancel": gettext_lazy("Cancelled your request"),
    "rights.complete": gettext_lazy("Completed your request"),
    "rights.unseal": gettext_lazy("Read your request or export, for your rights"),
    "social.unseal": gettext_lazy("Read what a connected account sent"),
    "social.pending_unseal": gettext_lazy("Read what a connected account sent, during sign-up"),
}
# Automated processes by what they do, not by their internal job names.
_SYSTEM_JOBS = {
    "age-gate": gettext_lazy("Age check before a consent"),
    "retention": gettext_lazy("Retention clean-up"),
    "reindex": gettext_lazy("Search index update"),
    "social-login": gettext_lazy("Social sign-in"),
    "consent.parental-link": gettext_lazy("Parental consent link"),
    "consent.expire-requests": gettext_lazy("Expiry of unconfirmed requests"),
    "rights-export": gettext_lazy("Preparing your export"),
    "rights.erasure": gettext_lazy("Erasing your account"),
    "erasure.token-revocation": gettext_lazy("Disconnecting your connected accounts"),
}
_ACTORS = {
    AuditActorType.PARTNER: gettext_lazy("Partner"),
    AuditActorType.STAFF: gettext_lazy("Staff member"),
    AuditActorType.SYSTEM: gettext_lazy("Automated process"),
    AuditActorType.PERSON: gettext_lazy("Another person"),
}


def _action(code: str) -> str:
    if code.startswith("profile.reseal."):
        return str(_("Re-encrypted your data under your key"))
    return str(_ACTIONS.get(code, _("Other processing")))


# Some jobs read for a purpose of their own, whatever purpose label their reads carry.
_JOB_PURPOSES = {"age-gate": gettext_lazy("Checking you are old enough to consent on your own (required by law)")}


def _purpose(entry: AccessEntry, purposes: dict[str, str]) -> str:
    job_purpose = _JOB_PURPOSES.get(entry.actor_name) if entry.actor_type == AuditActorType.SYSTEM else None
    return str(job_purpose or purposes.get(entry.purpose, entry.purpose))


def _actor(entry: AccessEntry) -> tuple[str, str]:
    """(who, their name): people and partners by kind and client id, jobs by what they do."""
    if entry.by_self:
        return str(_("You")), ""
    if entry.actor_type == AuditActorType.SYSTEM:
        job = _SYSTEM_JOBS.get(entry.actor_name)
        return (str(job), "") if job else (str(_ACTORS[AuditActorType.SYSTEM]), "")
    label = _ACTORS.get(AuditActorType(entry.actor_type)) if entry.actor_type in AuditActorType.values else None
    return str(label or entry.actor_type), entry.actor_name


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
            "action": _action(entry.action),
            "fields": [labels.get(name, name) for name in entry.fields],
            "purpose": _purpose(entry, purposes),
            "actor": who,
            "actor_name": name,
        }
        for entry in page.object_list
        for who, name in [_actor(entry)]
    ]
    context = {"page": page, "entries": entries, "include_own": include_own, "own_param": "1" if include_own else ""}
    return render(request, "portal/access_log.html", context)
