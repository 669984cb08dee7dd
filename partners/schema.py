"""OpenAPI: the partners' security scheme (loaded in PartnersConfig.ready)."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class PartnerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "partners.authentication.PartnerKeyAuthentication"
    name = "partnerApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "API key",
            "description": "A partner client's API key (`prefix.secret`, shown once when made): "
            "`Authorization: Bearer <key>`, or the `X-Api-Key` header.",
        }
