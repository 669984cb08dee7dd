"""The audit log viewer: staff holding staff.view_audit_log page through the entries, newest
first, filtered by actor, action, purpose and time; those holding staff.verify_audit_chain run
the chain's verification (what `manage.py audit_verify` does), which is itself audited.

Entries name fields and opaque ids only, never values, so they are shown as stored."""

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import reverse

from profiles.gate import Actor
from vault.audit import audit_record, audit_verify
from vault.audit.selectors import audit_entries_search
from vault.models import AuditActorType

VIEW_PERMISSION = "staff.view_audit_log"
VERIFY_PERMISSION = "staff.verify_audit_chain"
PER_PAGE = 50


class AuditFilterForm(forms.Form):
    actor_type = forms.ChoiceField(choices=[("", "any"), *AuditActorType.choices], required=False)
    actor_id = forms.CharField(max_length=128, required=False, help_text="Exact: a staff id, a client id, a pseudonym.")
    action = forms.CharField(max_length=64, required=False, help_text='Exact, or ending in "." for a family.')
    purpose = forms.CharField(max_length=64, required=False)
    since = forms.DateTimeField(required=False, help_text="From (YYYY-MM-DD or YYYY-MM-DD HH:MM).")
    until = forms.DateTimeField(required=False, help_text="Before (YYYY-MM-DD or YYYY-MM-DD HH:MM).")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", "The end must come after the start.")
        return data


def audit_log_view(request: HttpRequest) -> HttpResponse:
    """One page of entries (GET filters; bad ones are form errors and list nothing)."""
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    form = AuditFilterForm(request.GET or None)
    page = None
    if not request.GET or form.is_valid():
        filters = form.cleaned_data if request.GET else {}
        rows = audit_entries_search(**{name: value for name, value in filters.items() if value})
        page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        **admin.site.each_context(request),
        "title": "Audit log",
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "can_verify": request.user.has_perm(VERIFY_PERMISSION),
        "verify_url": reverse("admin:staff_audit_verify"),
    }
    return TemplateResponse(request, "admin/staff/audit_log.html", context)


def audit_verify_view(request: HttpRequest) -> HttpResponse:
    """Walk the whole chain and show the result; the run is audited with its outcome. A POST
    only, asked by those allowed (403 before 405: the method tells an outsider nothing)."""
    if not request.user.has_perm(VERIFY_PERMISSION):
        raise PermissionDenied
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    result = audit_verify()
    action = "audit.verify_ok" if result.ok else "audit.verify_failed"
    audit_record(**Actor.staff(request.user.pk).audit(), action=action)
    context = {
        **admin.site.each_context(request),
        "title": "Audit chain verification",
        "result": result,
        "can_view": request.user.has_perm(VIEW_PERMISSION),
        "log_url": reverse("admin:staff_audit_log"),
    }
    return TemplateResponse(request, "admin/staff/audit_verify.html", context)
