"""The site's URLs: each app's own `urls.py` (pages) and `api_urls.py` (the REST API under
/api/v1/), included here and nowhere else."""

from django.contrib import admin
from django.urls import include, path

api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("consent.api_urls")),
    path("", include("profiles.api_urls")),
    path("", include("rights.api_urls")),
    path("", include("partners.api_urls")),
]

urlpatterns = [
    path("", include("consent.urls")),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),  # before allauth's: its provider endpoints share /accounts/
    path("accounts/", include("allauth.urls")),
    path("_allauth/", include("allauth.headless.urls")),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("", include("rights.urls")),
    path("", include("portal.urls")),
    path("", include("vault.urls")),  # last: it ends with the catch-all for unknown API paths
]

# Errors on API paths answer in the API's JSON envelope, pages in HTML (vault/api.py).
handler400 = "vault.api.handler400"
handler403 = "vault.api.handler403"
handler404 = "vault.api.handler404"
handler500 = "vault.api.handler500"
