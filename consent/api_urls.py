from django.urls import path

from consent import api

urlpatterns = [
    path("consent/", api.ConsentListView.as_view(), name="consent-list"),
    path("consent/history/", api.HistoryView.as_view(), name="consent-history"),
    path("consent/receipts/<uuid:event_id>/", api.ReceiptView.as_view(), name="consent-receipt"),
    path("consent/<slug:purpose>/grant/", api.GrantView.as_view(), name="consent-grant"),
    path("consent/<slug:purpose>/withdraw/", api.WithdrawView.as_view(), name="consent-withdraw"),
    path("consent/<slug:purpose>/request/", api.RequestView.as_view(), name="consent-request"),
    path(
        "consent/<slug:purpose>/parental-request/", api.ParentalRequestView.as_view(), name="consent-parental-request"
    ),
]
