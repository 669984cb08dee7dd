from django.urls import path

from partners import api, api_events, api_webhooks

urlpatterns = [
    path(
        "partner/people/<slug:person>/consent/<slug:purpose>/",
        api.ConsentCheckView.as_view(),
        name="partner-consent-check",
    ),
    path("partner/triggers/catalog/", api_webhooks.CatalogTriggerView.as_view(), name="partner-trigger-catalog"),
    path("partner/events/", api_events.EventIngestView.as_view(), name="partner-events"),
]

from partners import api_people  # noqa: E402 (reading people: docs/partners.md)

urlpatterns += [
    path("partner/people/lookup/", api_people.LookupView.as_view(), name="partner-person-lookup"),
    path("partner/people/<slug:person>/", api_people.PersonView.as_view(), name="partner-person"),
    path("partner/changes/", api_people.ChangesView.as_view(), name="partner-changes"),
]
