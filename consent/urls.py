from django.urls import path

from consent import views
from consent.gpc import gpc_json

urlpatterns = [
    path(".well-known/gpc.json", gpc_json, name="gpc"),
    path("consent/policies/<slug:purpose>/<str:label>/", views.policy_text, name="consent-policy"),
    path("consent/confirm/<str:token>/", views.confirm_double_opt_in, name="consent-confirm"),
    path("consent/parental/<str:token>/", views.confirm_parental, name="consent-parental"),
]
