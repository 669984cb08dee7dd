"""The core's own endpoints: health, the receipt-signing public keys, and the API's schema and
interactive docs (generated from the code by drf-spectacular)."""

from typing import Any

from django.conf import settings
from django.urls import path
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from vault.health import healthz
from vault.signing import jwks_view

# Swagger UI sets inline styles (never inline scripts: its script is served as a file). The docs
# page alone may apply them; every other page keeps style-src 'self'.
_DOCS_CSP: dict[str, Any] = {**settings.SECURE_CSP, "style-src": [CSP.SELF, CSP.UNSAFE_INLINE]}
api_docs = csp_override(_DOCS_CSP)(SpectacularSwaggerSplitView.as_view(url_name="api-schema"))

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path(".well-known/jwks.json", jwks_view, name="jwks"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", api_docs, name="api-docs"),
]
