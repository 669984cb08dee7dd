from django.urls import path

from partners import api, api_webhooks

urlpatterns = [
    path(
        "partner/people/<slug:person>/consent/<slug:purpose>/",
        api.ConsentCheckView.as_view(),
        name="partner-consent-check",
    ),
    path("partner/triggers/catalog/", api_webhooks.CatalogTriggerView.as_view(), name="partner-trigger-catalog"),
]
