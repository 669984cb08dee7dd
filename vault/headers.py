"""Response headers that keep personal data out of caches and switch off browser features the
vault never uses.

Pages and API answers about a person must not be stored by a browser or any shared cache:
`Cache-Control: no-store` on every API response and on every page served to a signed-in person
(unless a view chose its own caching, as the public GPC and JWKS documents do). API answers vary
on the session cookie and on allauth's `X-Session-Token`, so a cache keyed on the URL alone can
never serve one person's answer to another. `Permissions-Policy` denies every powerful feature.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers, patch_vary_headers

PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "browsing-topics",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
)
_PERSONAL_PREFIXES = ("/api/", "/_allauth/")


class PrivacyHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        is_api = request.path.startswith(_PERSONAL_PREFIXES)
        if is_api:
            patch_vary_headers(response, ("Cookie", "X-Session-Token"))
        signed_in = getattr(getattr(request, "user", None), "is_authenticated", False)
        if (is_api or signed_in) and not response.has_header("Cache-Control"):
            add_never_cache_headers(response)  # no-cache, no-store, must-revalidate, private
        return response
