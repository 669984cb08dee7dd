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
        consoles = [path(route, self.admin_view(view), name=name) for route, view, name in CONSOLES]
        return consoles + super().get_urls()

    def each_context(self, request: Any) -> dict[str, Any]:
        """The consoles this member of staff may open, for the index and the navigation."""
        context = super().each_context(request)
        context["consoles"] = [
            console for console in CONSOLE_LINKS if request.user.is_active and request.user.has_perm(console[2])
        ]
        return context


CONSOLE_LINKS: list[tuple[str, str, str]] = []  # (title, url name, permission)
