"""OpenAPI extensions for the project's own API classes (loaded in VaultConfig.ready)."""

from drf_spectacular.authentication import SessionScheme


class ApiSessionScheme(SessionScheme):
    target_class = "vault.authentication.ApiSessionAuthentication"
