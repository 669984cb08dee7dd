from django.urls import path

from partners import api

urlpatterns = [
    path(
        "partner/people/<slug:person>/consent/<slug:purpose>/",
        api.ConsentCheckView.as_view(),
        name="partner-consent-check",
    ),
]
