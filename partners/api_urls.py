from django.urls import path

from partners import api, api_segments

urlpatterns = [
    path(
        "partner/people/<slug:person>/consent/<slug:purpose>/",
        api.ConsentCheckView.as_view(),
        name="partner-consent-check",
    ),
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
