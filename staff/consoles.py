"""The staff consoles that are pages of their own rather than a model's list. site.py serves each
under /admin/ (with the admin's login, MFA and CSRF protection), links to it from the index for
those holding its permission, and the view itself answers 403 to anyone else."""

from collections.abc import Callable
from typing import Any, NamedTuple

from staff.audit_log import audit_log_view, audit_verify_view
from staff.dashboard import consent_dashboard
from staff.key_status import key_status_view
from staff.people import views as people


class Console(NamedTuple):
    route: str  # under /admin/
    view: Callable[..., Any]
    name: str  # URL name, in the admin namespace
    title: str  # shown on the index; empty for pages reached from another page only
    permission: str  # "app_label.codename"
    # For a route with arguments: the URL kwargs of an existing object, looked up once the
    # permission matrix test (tests/staff) has seeded one object of every registered model.
    sample: Callable[[], dict[str, Any]] | None = None


CONSOLES: list[Console] = [
    Console(
        "consent-analytics/",
        consent_dashboard,
        "consent_analytics",
        "Consent analytics",
        "staff.view_consent_dashboard",
    ),
    Console("audit-log/", audit_log_view, "staff_audit_log", "Audit log", "staff.view_audit_log"),
    Console("audit-log/verify/", audit_verify_view, "staff_audit_verify", "", "staff.verify_audit_chain"),
    Console("keys/", key_status_view, "staff_key_status", "Key status", "staff.view_key_status"),
    # A person (staff/people/): found by exact address or number; their page is reached from there,
    # from the user list and from the user's page.
    Console("people/find/", people.person_find, "staff_person_find", "Find a person", "staff.view_person"),
    Console(
        "people/<uuid:subject_id>/",
        people.person_page,
        "staff_person",
        "",
        "staff.view_person",
        sample=people.sample_person,
    ),
]
