from django.urls import path

from profiles import api

urlpatterns = [
    path("me/profile/", api.MyProfileView.as_view(), name="my-profile"),
    path("me/documents/", api.MyDocumentsView.as_view(), name="my-documents"),
    path("me/events/", api.MyEventsView.as_view(), name="my-events"),
    path("profile-fields/", api.FieldDefinitionListView.as_view(), name="profile-fields"),
    path("profile-fields/<slug:key>/", api.FieldDefinitionView.as_view(), name="profile-field"),
]
