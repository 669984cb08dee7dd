from django.urls import path

from accounts import views

app_name = "portal"
urlpatterns = [
    path("", views.home, name="home"),
    path("profile/", views.profile, name="profile"),
    path("security/", views.security, name="security"),
    path("security/sessions/end-others/", views.sessions_end_others, name="sessions-end-others"),
    path("privacy/", views.privacy, name="privacy"),
    path("privacy/access-log/", views.access_log, name="access-log"),
]
