"""The staff admin site. Every app registers its admin on it (`StaffAdminConfig.default_site`);
the consoles that belong to no model (staff/consoles.py) are served under it too, each behind its
own permission, with the admin's login, MFA and CSRF protection."""

from typing import Any

from django.contrib import admin
from django.urls import URLPattern, URLResolver, path

from staff.consoles import CONSOLES


class StaffAdminSite(admin.AdminSite):
    site_header = "Consent vault: staff"
    site_title = "Consent vault staff"
    index_title = "Work"

    def get_urls(self) -> list[URLResolver | URLPattern]:
        consoles = [path(c.route, self.admin_view(c.view), name=c.name) for c in CONSOLES]
        return consoles + super().get_urls()

    def each_context(self, request: Any) -> dict[str, Any]:
        """The consoles this member of staff may open, for the index and the navigation."""
        context = super().each_context(request)
        user = request.user
        context["consoles"] = [c for c in CONSOLES if c.title and user.is_active and user.has_perm(c.permission)]
        return context
