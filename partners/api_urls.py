from django.urls import path

from partners import api, api_events

urlpatterns = [
    path(
        "partner/people/<slug:person>/consent/<slug:purpose>/",
        api.ConsentCheckView.as_view(),
        name="partner-consent-check",
    ),
    path("partner/events/", api_events.EventIngestView.as_view(), name="partner-events"),
]
