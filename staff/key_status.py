"""The key status console (staff.view_key_status): KEKs by id (never their material), data keys
per KEK, how far the last rotation has got and the key epochs. Read-only: rotating and retiring
keys are `manage.py vault_keys` and the epoch beat task's work."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from vault.selectors import key_status

VIEW_PERMISSION = "staff.view_key_status"


def key_status_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    context = {
        **admin.site.each_context(request),
        "title": "Key status",
        "status": key_status(),
        "can_verify": request.user.has_perm("staff.verify_audit_chain"),
        "verify_url": reverse("admin:staff_audit_verify"),
    }
    return TemplateResponse(request, "admin/staff/key_status.html", context)
