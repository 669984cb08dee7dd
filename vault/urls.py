from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.utils.csp import CSP
from django.views import defaults
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from consent.gpc import gpc_json
from consent.views import confirm_double_opt_in, confirm_parental, policy_text, portal_consent, portal_receipt
from vault.api import json_error_response
from vault.health import healthz
from vault.signing import jwks_view

# Swagger UI sets inline styles (never inline scripts: its script is served as a file). The docs
# page alone may apply them; every other page keeps style-src 'self'.
_DOCS_CSP: dict[str, Any] = {**settings.SECURE_CSP, "style-src": [CSP.SELF, CSP.UNSAFE_INLINE]}
api_docs = csp_override(_DOCS_CSP)(SpectacularSwaggerSplitView.as_view(url_name="api-schema"))

api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("consent.api_urls")),
    path("", include("profiles.api_urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path(".well-known/jwks.json", jwks_view, name="jwks"),
    path(".well-known/gpc.json", gpc_json, name="gpc"),
    path("consent/policies/<slug:purpose>/<str:label>/", policy_text, name="consent-policy"),
    path("consent/", portal_consent, name="consent-portal"),
    path("consent/receipts/<uuid:event_id>.jws", portal_receipt, name="consent-portal-receipt"),
    path("consent/confirm/<str:token>/", confirm_double_opt_in, name="consent-confirm"),
    path("consent/parental/<str:token>/", confirm_parental, name="consent-parental"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("_allauth/", include("allauth.headless.urls")),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", api_docs, name="api-docs"),
    path("", include("accounts.urls")),
]


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return json_error_response(404, "not_found", "Not found.")
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return json_error_response(500, "server_error", "An unexpected error occurred.")
    return defaults.server_error(request)
