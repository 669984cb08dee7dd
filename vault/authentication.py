"""API authentication shared by every view (DRF imports it while loading rest_framework.views,
so it must not import DRF's views itself)."""

from typing import Any

from rest_framework.authentication import SessionAuthentication


class ApiSessionAuthentication(SessionAuthentication):
    """DRF's session auth, but naming a scheme so that "not logged in" is a 401, not a 403.

    DRF answers 403 to anonymous callers when the first authenticator declares no
    WWW-Authenticate scheme; clients need to tell "log in" (401) from "not allowed" (403).
    """

    def authenticate_header(self, request: Any) -> str:
        return 'Session realm="api"'
