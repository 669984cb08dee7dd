from django.urls import path

from rights import provider_views, views

app_name = "rights"
urlpatterns = [
    path("privacy/", views.privacy, name="privacy"),
    path("privacy/requests/", views.request_create, name="request-create"),
    path("privacy/requests/<uuid:request_id>/", views.request_detail, name="request"),
    path("privacy/requests/<uuid:request_id>/cancel/", views.request_cancel, name="request-cancel"),
    path("privacy/requests/<uuid:request_id>/export.zip", views.export_file, name="export-file"),
    path("privacy/restriction/", views.restriction, name="restriction"),
    path("privacy/delete-account/", views.erase, name="erase"),
    path("privacy/correction/", views.rectify, name="rectify"),
    path("privacy/do-not-sell-or-share/", views.do_not_sell, name="do-not-sell"),
    path("privacy/limit-sensitive/", views.limit_sensitive, name="limit-sensitive"),
    path(
        "privacy/provider-deletion/<str:code>/",
        provider_views.provider_deletion_status,
        name="provider-deletion",
    ),
]
