"""System checks: `manage.py check` (and migrate, runserver) fail clearly on unusable keys."""

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from vault.keys import VaultError, get_provider


@checks.register("vault")
def check_vault_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        get_provider().self_test()
    except (ImproperlyConfigured, VaultError) as exc:
        return [checks.Error(str(exc), hint="`manage.py vault_keys init` creates local keys.", id="vault.E001")]
    return []
