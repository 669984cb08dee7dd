from django.urls import path

from partners import api, api_events, api_people, api_segments, api_webhooks

urlpatterns = [
    path(
        "partner/people/<slug:person>/consent/<slug:purpose>/",
        api.ConsentCheckView.as_view(),
        name="partner-consent-check",
    ),
    path("partner/triggers/catalog/", api_webhooks.CatalogTriggerView.as_view(), name="partner-trigger-catalog"),
    path("partner/events/", api_events.EventIngestView.as_view(), name="partner-events"),
    path("partner/people/lookup/", api_people.LookupView.as_view(), name="partner-person-lookup"),
    path("partner/people/<slug:person>/", api_people.PersonView.as_view(), name="partner-person"),
    path("partner/changes/", api_people.ChangesView.as_view(), name="partner-changes"),
    path("partner/segments/", api_segments.SegmentListView.as_view(), name="partner-segments"),
    path("partner/segments/<uuid:segment>/", api_segments.SegmentDetailView.as_view(), name="partner-segment"),
    path(
        "partner/segments/<uuid:segment>/refresh/",
        api_segments.SegmentRefreshView.as_view(),
        name="partner-segment-refresh",
    ),
    path(
        "partner/segments/<uuid:segment>/export/",
        api_segments.SegmentExportView.as_view(),
        name="partner-segment-export",
    ),
]
