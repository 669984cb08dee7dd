"""What each social provider's terms allow us to do with the data it gave (DESIGN.md invariant 6):
how often it is refreshed, how long it may be kept without a successful refresh, which of its
claims may become which profile fields, and whether (and how) its grant can be revoked.

Defaults follow the providers' terms (docs/social-login.md names the clauses); an operator may
shorten or lengthen them per provider from the environment, read once at start-up
(`social_policy_overrides_from_env`, called by accounts/apps.py into
`settings.SOCIAL_PROVIDER_POLICIES`):

    SOCIAL_<PROVIDER>_REFRESH_HOURS     0: never on a schedule (only each sign-in refreshes)
    SOCIAL_<PROVIDER>_MAX_AGE_DAYS      days without a successful refresh before a purge
    SOCIAL_<PROVIDER>_IMPORT_FIELDS     comma-separated profile fields its claims may fill
    (OpenID Connect providers: SOCIAL_OIDC_<NAME>_..., as for their client settings)
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.models import SocialApp
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from accounts.social.revocation import REVOKERS
from profiles.gate import SocialTokenValue
from vault.env import env_int, env_list

# Profile fields a provider's answer can fill (accounts/social/imports.py knows how to find each).
IMPORTABLE_FIELDS = ("given_name", "family_name", "birth_date", "country", "city", "interests")


@dataclass(frozen=True)
class ProviderPolicy:
    """One provider's rules. `kind` is allauth's provider (`google`, `facebook`, `github`,
    `apple`, `openid_connect`); `provider_id` what `SocialAccount.provider` holds."""

    provider_id: str
    kind: str
    refresh_every: timedelta | None  # None: only sign-ins refresh
    max_age: timedelta
    fields: frozenset[str]
    terms: str  # the clause the defaults follow (docs/social-login.md)

    @property
    def revoker(self) -> Callable[[SocialApp, SocialTokenValue, dict[str, Any]], None] | None:
        """How a grant is withdrawn at this provider (accounts/social/revocation.py), if it can be."""
        return REVOKERS.get(self.kind)

    @property
    def can_revoke(self) -> bool:
        return self.revoker is not None


@dataclass(frozen=True)
class _Default:
    refresh_hours: int
    max_age_days: int
    fields: tuple[str, ...]
    terms: str


_NAMES_AND_PLACE = ("given_name", "family_name", "country", "city")
DEFAULTS: dict[str, _Default] = {
    # Google API Services User Data Policy, "Limited Use" and the duty to keep data accurate and
    # delete it when no longer needed; access tokens live an hour, so a daily refresh.
    "google": _Default(
        24, 30, ("given_name", "family_name", "birth_date", "country", "city"), "google-user-data-policy"
    ),
    # Meta Platform Terms, section 3 (Data Use): keep Platform Data accurate, delete it when no
    # longer needed or when access ends. A long-lived token lasts about 60 days: exchanged daily,
    # and data that could not be refreshed for 60 days goes (the token is dead by then anyway).
    "facebook": _Default(24, 60, IMPORTABLE_FIELDS, "meta-platform-terms-3"),
    # GitHub's terms set no period; its tokens do not expire. Weekly re-read, 90 days at most.
    "github": _Default(7 * 24, 90, _NAMES_AND_PLACE, "github-default"),
    # Sign in with Apple has no userinfo endpoint: names arrive once, at sign-up.
    "apple": _Default(0, 90, ("given_name", "family_name"), "apple-default"),
    "openid_connect": _Default(24, 90, (*_NAMES_AND_PLACE, "birth_date"), "oidc-default"),
}
_UNKNOWN = _Default(0, 30, (), "unknown-provider")  # a provider no longer configured


def _prefix(provider_id: str, kind: str) -> str:
    if kind == "openid_connect":
        return f"SOCIAL_OIDC_{provider_id.upper().replace('-', '_')}"
    return f"SOCIAL_{provider_id.upper()}"


def social_policy_overrides_from_env(environ: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """`SOCIAL_PROVIDER_POLICIES`: the policies as the environment sets them, per provider id (the
    OpenID Connect ones by the names in SOCIAL_OIDC_PROVIDERS). Bad values refuse to start."""
    kinds = {provider: provider for provider in ("google", "facebook", "github", "apple")}
    kinds |= dict.fromkeys(env_list("SOCIAL_OIDC_PROVIDERS", [], environ=environ), "openid_connect")
    overrides: dict[str, dict[str, Any]] = {}
    for provider_id, kind in kinds.items():
        prefix = _prefix(provider_id, kind)
        default = DEFAULTS[kind]
        refresh = env_int(f"{prefix}_REFRESH_HOURS", default.refresh_hours, minimum=0, environ=environ)
        max_age = env_int(f"{prefix}_MAX_AGE_DAYS", default.max_age_days, minimum=1, environ=environ)
        fields = env_list(f"{prefix}_IMPORT_FIELDS", list(default.fields), environ=environ)
        unknown = sorted(set(fields) - set(IMPORTABLE_FIELDS))
        if unknown:
            raise ImproperlyConfigured(
                f"{prefix}_IMPORT_FIELDS: {', '.join(unknown)} cannot be imported "
                f"(choose from {', '.join(IMPORTABLE_FIELDS)})."
            )
        if refresh and refresh > max_age * 24:
            raise ImproperlyConfigured(
                f"{prefix}_REFRESH_HOURS ({refresh}) is longer than {prefix}_MAX_AGE_DAYS ({max_age} days): "
                "data would be removed before its first refresh."
            )
        chosen = {"refresh_hours": refresh, "max_age_days": max_age, "fields": fields}
        if chosen != {
            "refresh_hours": default.refresh_hours,
            "max_age_days": default.max_age_days,
            "fields": list(default.fields),
        }:
            overrides[provider_id] = chosen
    return overrides


def provider_kind(provider_id: str) -> str:
    """allauth's provider behind a `SocialAccount.provider` id ("" when none is configured)."""
    try:
        return str(get_adapter().get_app(None, provider=provider_id).provider)
    except (SocialApp.DoesNotExist, SocialApp.MultipleObjectsReturned):
        return ""


def provider_policy(provider_id: str) -> ProviderPolicy:
    """The policy of a provider (by `SocialAccount.provider`): its kind's defaults, with the
    overrides of `settings.SOCIAL_PROVIDER_POLICIES`."""
    kind = provider_kind(provider_id)
    default = DEFAULTS.get(kind, _UNKNOWN)
    override: dict[str, Any] = getattr(settings, "SOCIAL_PROVIDER_POLICIES", {}).get(provider_id, {})
    refresh_hours = int(override.get("refresh_hours", default.refresh_hours))
    return ProviderPolicy(
        provider_id=provider_id,
        kind=kind,
        refresh_every=timedelta(hours=refresh_hours) if refresh_hours else None,
        max_age=timedelta(days=int(override.get("max_age_days", default.max_age_days))),
        fields=frozenset(override.get("fields", default.fields)),
        terms=default.terms,
    )
