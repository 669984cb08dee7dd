"""The core's own endpoints: health, the receipt-signing public keys, and the API's schema and
interactive docs (generated from the code by drf-spectacular)."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path, re_path
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from vault.envelope import json_error_response
from vault.health import healthz
from vault.signing import jwks_view

# Swagger UI sets inline styles (never inline scripts: its script is served as a file). The docs
# page alone may apply them; every other page keeps style-src 'self'.
_DOCS_CSP: dict[str, Any] = {**settings.SECURE_CSP, "style-src": [CSP.SELF, CSP.UNSAFE_INLINE]}
api_docs = csp_override(_DOCS_CSP)(SpectacularSwaggerSplitView.as_view(url_name="api-schema"))


@csrf_exempt
def api_not_found(request: HttpRequest, path: str) -> HttpResponse:
    """Any API path that no app answers: the envelope, in development too (where Django would
    otherwise show its HTML debug page)."""
    return json_error_response(404, "not_found", "Not found.")


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path(".well-known/jwks.json", jwks_view, name="jwks"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", api_docs, name="api-docs"),
    # Last in config/urls.py, after every app's API routes.
    re_path(r"^api/(?P<path>.*)$", api_not_found),
]
