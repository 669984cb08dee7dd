"""Writes of consent, by topic; every surface (portal, API, admin, tasks, commands) calls these,
so the rules live here once, and everything is importable from `consent.services`:

- `ledger`: granting, withdrawing, refusing, and the projection rebuilt from the ledger;
- `policies`: drafts and publishing a purpose's policy versions, and which one a choice names;
- `links`: double opt-in and parental consent, confirmed by an e-mailed link;
- `age_gate`: the age of digital consent, the age source that tells a person's birth date, and
  the one rule for a date of birth (`birth_date_check`);
- `evidence`: what a choice records about its request (IP hash, browser family, jurisdiction);
- `bulk_import`: many choices collected elsewhere, written in bulk;
- `erasure`: a person's ledger and projection deleted when they are erased;
- Global Privacy Control lives in `consent/gpc.py`, with the middleware that receives it.
"""

from consent.gpc import consent_gpc_apply
from consent.services.age_gate import AgeSource, age_in_years, birth_date_check, digital_consent_age
from consent.services.bulk_import import consent_import_many
from consent.services.erasure import consent_ledger_erase
from consent.services.evidence import (
    DEVICE_LABELS,
    EVIDENCE_IP_INDEX,
    Evidence,
    UserAgentSummary,
    user_agent_summary,
)
from consent.services.ledger import (
    RebuildReport,
    consent_grant,
    consent_projection_rebuild,
    consent_refuse,
    consent_withdraw,
)
from consent.services.links import (
    LinkState,
    consent_link_confirm,
    consent_link_state,
    consent_parental_request,
    consent_request,
    consent_requests_expire,
)
from consent.services.policies import (
    PUBLISH_GRACE,
    policy_draft_publish,
    policy_version_check,
    policy_version_publish,
)

__all__ = [
    "DEVICE_LABELS",
    "EVIDENCE_IP_INDEX",
    "PUBLISH_GRACE",
    "AgeSource",
    "Evidence",
    "LinkState",
    "RebuildReport",
    "UserAgentSummary",
    "age_in_years",
    "birth_date_check",
    "consent_gpc_apply",
    "consent_grant",
    "consent_import_many",
    "consent_ledger_erase",
    "consent_link_confirm",
    "consent_link_state",
    "consent_parental_request",
    "consent_projection_rebuild",
    "consent_refuse",
    "consent_request",
    "consent_requests_expire",
    "consent_withdraw",
    "digital_consent_age",
    "policy_draft_publish",
    "policy_version_check",
    "policy_version_publish",
    "user_agent_summary",
]
