"""The staff admin site. Every app registers its admin on it (`StaffAdminConfig.default_site`),
and every registration is audited (staff/audit.py); the consoles that belong to no model
(staff/consoles.py) are served under it too, each behind its own permission, with the admin's
login, MFA and CSRF protection."""

from collections.abc import Iterable
from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.urls import URLPattern, URLResolver, path

from staff.audit import audited_admin
from staff.consoles import CONSOLES


class StaffAdminSite(admin.AdminSite):
    site_header = "Consent vault: staff"
    site_title = "Consent vault staff"
    index_title = "Work"

    def register(
        self,
        model_or_iterable: type[Model] | Iterable[type[Model]],
        admin_class: type[admin.ModelAdmin] | None = None,
        **options: Any,
    ) -> None:
        """Register as Django does, with the admin class wrapped so that every add, change,
        delete and action through it is audited: allauth's and django.contrib.auth's too."""
        super().register(model_or_iterable, audited_admin(admin_class or admin.ModelAdmin), **options)

    def get_urls(self) -> list[URLResolver | URLPattern]:
        consoles = [path(c.route, self.admin_view(c.view), name=c.name) for c in CONSOLES]
        return consoles + super().get_urls()

    def each_context(self, request: Any) -> dict[str, Any]:
        """The consoles this member of staff may open, for the index and the navigation."""
        context = super().each_context(request)
        user = request.user
        context["consoles"] = [c for c in CONSOLES if c.title and user.is_active and user.has_perm(c.permission)]
        return context
