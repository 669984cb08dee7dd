from django.apps import AppConfig


class VaultConfig(AppConfig):
    name = "vault"
    verbose_name = "Vault core"

    def ready(self) -> None:
        from vault import checks, schema  # noqa: F401  registers system checks and OpenAPI extensions
