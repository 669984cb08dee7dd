from django.apps import AppConfig


class RightsConfig(AppConfig):
    """Data-subject requests (GDPR Art. 12, 15 to 21; CCPA): access, export, erasure,
    rectification, restriction and objection, as tracked records with deadlines."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "rights"
    verbose_name = "Data-subject rights"
