from django.urls import path

from portal.views import consent, overview, privacy, profile, security

app_name = "portal"
urlpatterns = [
    path("", overview.home, name="home"),
    path("profile/", profile.profile, name="profile"),
    path("consent/", consent.portal_consent, name="consent"),
    path("consent/receipts/<uuid:event_id>.jws", consent.portal_receipt, name="consent-receipt"),
    path("security/", security.security, name="security"),
    path("security/sessions/end-others/", security.sessions_end_others, name="sessions-end-others"),
    path("privacy/access-log/", privacy.access_log, name="access-log"),
]
