from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Identity"

    def ready(self) -> None:
        # Connects the handlers that seal social tokens and provider data as allauth saves them.
        from accounts import social  # noqa: F401
