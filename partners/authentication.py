"""How a partner client proves who it is: an API key in `Authorization: Bearer <key>` (or
`X-Api-Key`), verified with one indexed lookup and a SHA-512 comparison; revoked or expired keys,
inactive clients and addresses outside the client's allow-list are refused (401)."""

import hashlib
import ipaddress
import time
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.throttling import SimpleRateThrottle

from partners.models import PartnerClient, PartnerCredential


@dataclass(frozen=True)
class PartnerPrincipal:
    """`request.user` of a partner's call: a client, never a person or staff member."""

    client: PartnerClient
    is_authenticated: bool = True
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False
    pk: None = None

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


def _key(request: Any) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip() or None
    return request.headers.get("X-Api-Key") or None


def _allowed(client: PartnerClient, address: str) -> bool:
    if not client.ip_allowlist:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(str(cidr), strict=False) for cidr in client.ip_allowlist)


# Verified keys, per process: SHA-512 of the key -> (credential with its client, when verified,
# monotonic). Trusted for PARTNER_CREDENTIAL_CACHE_SECONDS: a revocation, expiry or client change
# made in this process clears it at once (the signals below); one made in another process takes
# effect there within that window. The hot path (the consent check) then costs no query to
# authenticate. Only verified keys are kept, never the key itself, and the size is bounded.
_VERIFIED: dict[str, tuple[PartnerCredential, float]] = {}
_VERIFIED_MAX = 10_000


def credential_cache_clear(**kwargs: Any) -> None:
    _VERIFIED.clear()


post_save.connect(credential_cache_clear, sender=PartnerCredential, dispatch_uid="partners.credential_cache.key")
post_delete.connect(credential_cache_clear, sender=PartnerCredential, dispatch_uid="partners.credential_cache.key_del")
post_save.connect(credential_cache_clear, sender=PartnerClient, dispatch_uid="partners.credential_cache.client")
post_delete.connect(credential_cache_clear, sender=PartnerClient, dispatch_uid="partners.credential_cache.client_del")


def _verified(key: str) -> PartnerCredential:
    """The usable credential of `key`, from the cache when verified recently; raises
    `PartnerCredential.DoesNotExist`. A miss is one indexed query and a SHA-512 comparison."""
    ttl = settings.PARTNER_CREDENTIAL_CACHE_SECONDS
    digest = hashlib.sha512(key.encode()).hexdigest()
    hit = _VERIFIED.get(digest)
    now = time.monotonic()
    if hit is not None and now - hit[1] < ttl:
        return hit[0]
    credential = cast(PartnerCredential, PartnerCredential.objects.get_from_key(key))
    touch(credential)  # on a miss only: at most once a window per process, never per request
    if ttl:
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED[digest] = (credential, now)
    return credential


class PartnerKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Any) -> tuple[PartnerPrincipal, PartnerCredential] | None:
        key = _key(request)
        if key is None:
            return None
        try:
            credential = _verified(key)
        except PartnerCredential.DoesNotExist:
            raise exceptions.AuthenticationFailed("Unknown or revoked credential.") from None
        client = credential.client
        if credential.has_expired or not client.is_active:
            raise exceptions.AuthenticationFailed("Unknown or revoked credential.")
        if not _allowed(client, request.META.get("REMOTE_ADDR", "")):
            raise exceptions.AuthenticationFailed("This client may not call from this address.")
        return PartnerPrincipal(client), credential

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="partners"'


class PartnerRateThrottle(SimpleRateThrottle):
    """Each client at its own rate (`PartnerClient.rate_limit`), counted in fixed windows of the
    rate's period: one atomic increment per request, where DRF's sliding window reads and writes
    the list of every request's time in the period (at 600/min, 600 floats pickled per request).
    A client may burst up to twice its rate across a window's edge."""

    scope = "partner"

    def allow_request(self, request: Any, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, PartnerPrincipal):
            return True
        self.rate = principal.client.rate_limit
        self.num_requests, self.duration = self.parse_rate(self.rate)
        assert self.num_requests is not None and self.duration is not None  # rates are checked on save
        window = int(self.timer() // self.duration)
        self.key = f"throttle_partner_{principal.client.pk}_{window}"
        self.window_ends = (window + 1) * self.duration
        if self.cache.add(self.key, 1, self.duration + 1):
            return True
        try:
            count = self.cache.incr(self.key)
        except ValueError:  # expired between add and incr
            self.cache.add(self.key, 1, self.duration + 1)
            return True
        return count <= self.num_requests

    def wait(self) -> float | None:
        return max(self.window_ends - self.timer(), 0.0)

    def get_rate(self) -> str | None:
        return None  # set per request from the client

    def get_cache_key(self, request: Any, view: Any) -> str:
        return f"throttle_partner_{request.user.client.pk}"


def touch(credential: PartnerCredential) -> None:
    """Record that a key was used, at most once a minute (the hot path stays read-only)."""
    now = timezone.now()
    if credential.last_used_at is None or (now - credential.last_used_at).total_seconds() > 60:
        PartnerCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
