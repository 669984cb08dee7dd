"""Social login under the vault's rules (DESIGN.md invariants 1 and 6).

Two things django-allauth would otherwise do are changed here:

* **Nothing the provider sent stays in plaintext.** allauth keeps the access and refresh token in
  `SocialToken.token` / `token_secret` and the provider's profile response in
  `SocialAccount.extra_data`. Signal handlers take those values off the instance just before
  every save (whoever saves: sign-up, login, connecting another provider, the admin) and seal
  them under the person's "tokens" key (`SealedSocialToken`, `SealedSocialAccountData`), so the
  columns are written empty. The values stay on the in-memory instance for the rest of the
  request. Reading them back (`social_account_read`) passes the rows to the gate, which
  unseals them (`profiles.gate.social_account_unseal`: purpose checked, audited).
* **Provider data becomes profile data only with the person's agreement.** Social sign-up always
  shows a form (`SOCIALACCOUNT_AUTO_SIGNUP = False`) that offers, per profile field, the value
  the provider gave; only the ticked ones are written, with source "social" and the provider's
  id as source name. A claim that cannot be used (longer than the field allows, malformed) is
  shown with the reason, not dropped without a word.

A provider that is down, slow or answers nonsense gives the friendly error page (502) and one
log line without personal data; an OpenID Connect login is bound to its authorization request
by a nonce (accounts/social/oidc.py).

What a provider brought is refreshed on its schedule and at each sign-in, and purged when its
grant is revoked or it is older than the provider's maximum age (accounts/social/refresh.py,
policies in accounts/social/policies.py).

Removing a link revokes its grant at the provider where the provider allows it
(`social_account_revoke`, just before the link and its tokens are deleted) and purges what the
provider brought, but the values the person chose to keep as their own (accounts/social/
disconnect.py). When a person is erased, `social_tokens_revoke` withdraws all their grants
(accounts/social/revocation.py), before their keys are destroyed. Meta's data deletion callback
is verified by accounts/social/meta.py.
"""

from accounts.social.adapter import SocialAccountAdapter
from accounts.social.disconnect import (
    social_imported_fields,
    social_provider_data_delete,
    social_source_purge,
    social_values_keep,
)
from accounts.social.imports import ImportOffer, social_claims_import, social_import_offers
from accounts.social.middleware import SocialLoginMiddleware
from accounts.social.pending import (
    PENDING_CONTEXT,
    PENDING_SESSION_KEY,
    SEALED_SESSION_KEY,
    session_pending_seal,
    session_pending_unseal,
    social_pending_seal,
)
from accounts.social.policies import ProviderPolicy, provider_policy
from accounts.social.refresh import (
    RefreshOutcome,
    social_link_purge,
    social_link_refresh,
    social_link_signed_in,
    social_link_state_ensure,
    social_links_claim,
    social_links_expire,
)
from accounts.social.revocation import revocation_skipped, social_account_revoke, social_tokens_revoke
from accounts.social.sealing import social_account_data_seal, social_account_read, social_token_seal

__all__ = [
    "PENDING_CONTEXT",
    "PENDING_SESSION_KEY",
    "SEALED_SESSION_KEY",
    "ImportOffer",
    "ProviderPolicy",
    "RefreshOutcome",
    "SocialAccountAdapter",
    "SocialLoginMiddleware",
    "provider_policy",
    "revocation_skipped",
    "session_pending_seal",
    "session_pending_unseal",
    "social_account_data_seal",
    "social_account_read",
    "social_account_revoke",
    "social_claims_import",
    "social_import_offers",
    "social_imported_fields",
    "social_link_purge",
    "social_link_refresh",
    "social_link_signed_in",
    "social_link_state_ensure",
    "social_links_claim",
    "social_links_expire",
    "social_pending_seal",
    "social_provider_data_delete",
    "social_source_purge",
    "social_token_seal",
    "social_tokens_revoke",
    "social_values_keep",
]
