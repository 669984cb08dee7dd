from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class StaffConfig(AppConfig):
    """The staff admin: roles, the person's masked page with audited reveal, the consoles (audit
    log, key status, consent analytics). It sits on the top layer because it shows every app."""

    default = True
    default_auto_field = "django.db.models.BigAutoField"
    name = "staff"
    verbose_name = "Staff"


class StaffAdminConfig(admin_apps.AdminConfig):
    """Django's admin, served by the staff site: every app's `admin.register` lands on it."""

    default = False  # "staff" alone names StaffConfig
    default_site = "staff.site.StaffAdminSite"
