"""Sends the wrapped data keys to the `keystore` database when one is configured."""

from typing import Any

from django.conf import settings
from django.db.models import Model

KEYSTORE = "keystore"
KEYSTORE_MODELS = frozenset({"vault.datakey", "vault.erasedsubject"})


def _label(model: type[Model]) -> str:
    return model._meta.label_lower


def keystore_alias() -> str:
    return KEYSTORE if KEYSTORE in settings.DATABASES else "default"


class KeystoreRouter:
    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        return keystore_alias() if _label(model) in KEYSTORE_MODELS else None

    db_for_write = db_for_read

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        if KEYSTORE not in settings.DATABASES:
            return None
        is_key_model = model_name is not None and f"{app_label}.{model_name}" in KEYSTORE_MODELS
        if db == KEYSTORE:
            return is_key_model
        return False if is_key_model else None
