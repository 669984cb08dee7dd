from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "profiles"
    verbose_name = "Profiles"

    def ready(self) -> None:
        from allauth.account.signals import email_confirmed, user_signed_up

        from profiles import signals

        email_confirmed.connect(signals.merge_on_email_confirmed, dispatch_uid="profiles.merge_on_email_confirmed")
        user_signed_up.connect(signals.merge_on_signup, dispatch_uid="profiles.merge_on_signup")
