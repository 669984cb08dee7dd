from typing import Any

from django.apps import AppConfig
from django.conf import settings


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Identity"

    def ready(self) -> None:
        from allauth.usersessions.models import UserSession
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import pre_save

        from accounts.mfa import usersession_minimize, usersession_record
        from accounts.social.policies import social_policy_overrides_from_env
        from accounts.social_providers import social_form_action_sources, social_providers_from_env

        pre_save.connect(usersession_minimize, sender=UserSession, dispatch_uid="accounts.usersession_minimize")
        user_logged_in.connect(usersession_record, dispatch_uid="accounts.usersession_record")

        # Social providers come from SOCIAL_* variables (accounts/social_providers.py). Settings
        # stay free of app imports: the provider list is built here, once, unless a settings
        # module names it itself. A provider's sign-in page is reached by a form's redirect, so
        # its origin joins CSP form-action.
        if not hasattr(settings, "SOCIALACCOUNT_PROVIDERS"):
            settings.SOCIALACCOUNT_PROVIDERS = social_providers_from_env()
        if not hasattr(settings, "SOCIAL_PROVIDER_POLICIES"):  # refresh and maximum age, per provider
            settings.SOCIAL_PROVIDER_POLICIES = social_policy_overrides_from_env()
        providers: dict[str, dict[str, Any]] = getattr(settings, "SOCIALACCOUNT_PROVIDERS", {})
        csp: dict[str, Any] = settings.SECURE_CSP
        form_action = csp.setdefault("form-action", [])
        form_action.extend(source for source in social_form_action_sources(providers) if source not in form_action)

        # Connects the handlers that seal social tokens and provider data as allauth saves them.
        from accounts import social  # noqa: F401
