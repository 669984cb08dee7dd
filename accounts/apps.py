from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Identity"

    def ready(self) -> None:
        from allauth.usersessions.models import UserSession
        from django.db.models.signals import pre_save

        from accounts.mfa import usersession_minimize

        pre_save.connect(usersession_minimize, sender=UserSession, dispatch_uid="accounts.usersession_minimize")

        # Connects the handlers that seal social tokens and provider data as allauth saves them.
        from accounts import social  # noqa: F401
