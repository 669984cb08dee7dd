from django.db import models


class StaffAccess(models.Model):
    """No table: the holder of the staff consoles' permissions, which belong to no model."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_person", "Can open a person's page (values masked)"),
            ("reveal_personal_data", "Can reveal a person's values (with a reason; audited)"),
            ("view_consent_dashboard", "Can see the consent analytics dashboard (aggregates only)"),
            ("view_audit_log", "Can read the audit log"),
            ("verify_audit_chain", "Can verify the audit chain"),
            ("view_key_status", "Can see the key status"),
        ]

    def __str__(self) -> str:
        return "staff access"
