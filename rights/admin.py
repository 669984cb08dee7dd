"""A minimal staff view of data-subject requests (the staff-admin issue polishes it): the queue,
earliest deadline first, with overdue and due-within-seven-days flagged, and one form per
request for its steps (verify, extend, reject, complete, legal hold), each through the services
and audited. Acting needs the `rights.handle_rightsrequest` permission; sealed details are never
shown here."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from consent.admin import ReadOnlyAdmin
from profiles.gate import Actor
from rights.models import RightsRequest
from rights.selectors import queue_flags, unscoped_rights_queue
from rights.services import (
    restriction_lift,
    rights_legal_hold_lift,
    rights_legal_hold_set,
    rights_request_complete,
    rights_request_extend,
    rights_request_reject,
    rights_request_verify,
)
from vault.errors import ApplicationError


class StepForm(forms.Form):
    step = forms.ChoiceField(
        choices=[
            ("verify", "Verify the person (offline request)"),
            ("extend", "Extend the deadline"),
            ("reject", "Reject"),
            ("complete", "Complete (apply a rectification, restart an export)"),
            ("hold", "Set a legal hold (erasure)"),
            ("release", "Lift the legal hold"),
            ("lift", "Lift the restriction of processing"),
        ]
    )
    months = forms.IntegerField(min_value=1, max_value=2, required=False, help_text="Extension: 1 or 2 months.")
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=2000,
        label="Reason or note",
        help_text="A reason is shown to the person: no personal data. A verification note is sealed.",
    )


def _run(step: str, request_id: Any, actor: Actor, data: dict[str, Any], found: RightsRequest) -> None:
    text = data.get("text") or ""
    match step:
        case "verify":
            rights_request_verify(request_id=request_id, actor=actor, note=text)
        case "extend":
            rights_request_extend(request_id=request_id, actor=actor, months=data.get("months") or 0, reason=text)
        case "reject":
            rights_request_reject(request_id=request_id, actor=actor, reason=text)
        case "complete":
            rights_request_complete(request_id=request_id, actor=actor)
        case "hold":
            rights_legal_hold_set(request_id=request_id, actor=actor, reason=text)
        case "release":
            rights_legal_hold_lift(request_id=request_id, actor=actor)
        case "lift":
            restriction_lift(subject_id=found.subject_id, actor=actor)


@admin.register(RightsRequest)
class RightsRequestAdmin(ReadOnlyAdmin):
    list_display = ("kind", "status", "received_at", "deadline_shown", "flag", "legal_hold", "channel", "act")
    list_filter = ("status", "kind", "channel", "legal_hold")
    exclude = ("details", "verification_note")
    readonly_fields = ("subject_id",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[RightsRequest]:
        return unscoped_rights_queue(include_closed=True)

    @admin.display(description="Answer due")
    def deadline_shown(self, obj: RightsRequest) -> str:
        return f"{obj.deadline:%Y-%m-%d}"

    @admin.display(description="Flag")
    def flag(self, obj: RightsRequest) -> str:
        flags = queue_flags(obj)
        return "OVERDUE" if flags.overdue else ("due within 7 days" if flags.due_soon else "")

    @admin.display(description="")
    def act(self, obj: RightsRequest) -> str:
        if not obj.is_open and obj.kind != "restriction":
            return ""
        return format_html('<a href="{}">Act</a>', reverse("admin:rights_rightsrequest_act", args=[obj.pk]))

    def get_urls(self) -> list[URLPattern]:
        act = path(
            "<uuid:request_id>/act/",
            self.admin_site.admin_view(self.act_view),
            name="rights_rightsrequest_act",
        )
        return [act, *super().get_urls()]

    def act_view(self, request: HttpRequest, request_id: Any) -> HttpResponse:
        if not request.user.has_perm("rights.handle_rightsrequest"):
            raise PermissionDenied
        found = get_object_or_404(RightsRequest, pk=request_id)
        form = StepForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                _run(form.cleaned_data["step"], request_id, Actor.staff(request.user.pk), form.cleaned_data, found)
            except ApplicationError as error:
                form.add_error("text" if error.param in ("reason", "note") else None, error.message)
            else:
                messages.success(request, "Done.")
                return HttpResponseRedirect(reverse("admin:rights_rightsrequest_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Act on {found.get_kind_display().lower()} request",
            "item": found,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/rights/act.html", context)
