from django.urls import path

from rights import api, provider_views

urlpatterns = [
    path("me/requests/", api.MyRequestsView.as_view(), name="my-requests"),
    path("me/requests/<uuid:request_id>/", api.MyRequestView.as_view(), name="my-request"),
    path("me/requests/<uuid:request_id>/cancel/", api.MyRequestCancelView.as_view(), name="my-request-cancel"),
    path("me/requests/<uuid:request_id>/export/", api.MyRequestExportView.as_view(), name="my-request-export"),
    path("me/restriction/", api.MyRestrictionView.as_view(), name="my-restriction"),
    path("me/opt-outs/sale-sharing/", api.MySaleSharingOptOutView.as_view(), name="my-opt-out-sale-sharing"),
    path("me/opt-outs/sensitive/", api.MySensitiveLimitView.as_view(), name="my-opt-out-sensitive"),
    path(
        "providers/facebook/data-deletion/",
        provider_views.FacebookDataDeletionView.as_view(),
        name="facebook-data-deletion",
    ),
    path("requests/", api.RequestQueueView.as_view(), name="requests"),
    path("requests/<uuid:request_id>/", api.RequestDetailView.as_view(), name="request"),
    *(
        path(f"requests/<uuid:request_id>/{name}/", view, name=f"request-{name}")
        for name, view in api.STAFF_STEPS.items()
    ),
]
