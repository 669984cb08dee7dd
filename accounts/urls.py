"""Pages and endpoints of the accounts app outside the API (included before allauth's own)."""

from django.urls import path

from accounts.views import BackchannelLogoutView, GoogleRiscView

urlpatterns = [
    path(
        "accounts/oidc/<str:provider_id>/backchannel-logout/",
        BackchannelLogoutView.as_view(),
        name="oidc_backchannel_logout",
    ),
    path("accounts/google/risc/", GoogleRiscView.as_view(), name="google_risc"),
]
