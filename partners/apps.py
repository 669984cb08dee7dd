from django.apps import AppConfig


class PartnersConfig(AppConfig):
    """The marketing API: partner tools (shop, e-mail service, recommendation engine, push,
    media buying) see only what each person consented to for the tool's purpose."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "partners"
    verbose_name = "Partner clients"

    def ready(self) -> None:
        from partners import schema  # noqa: F401  registers the OpenAPI security scheme
