from django.urls import path

from profiles import api, staff_api

urlpatterns = [
    path("me/profile/", api.MyProfileView.as_view(), name="my-profile"),
    path("me/documents/", api.MyDocumentsView.as_view(), name="my-documents"),
    path("me/events/", api.MyEventsView.as_view(), name="my-events"),
    path("profile-fields/", api.FieldDefinitionListView.as_view(), name="profile-fields"),
    path("profile-fields/<slug:key>/", api.FieldDefinitionView.as_view(), name="profile-field"),
    path("profile-merges/", staff_api.MergeListView.as_view(), name="profile-merges"),
    path("profile-merges/<uuid:merge_id>/undo/", staff_api.MergeUndoView.as_view(), name="profile-merge-undo"),
]
