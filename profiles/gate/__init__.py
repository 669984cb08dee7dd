"""The access gate (DESIGN.md invariant 2): the one place where profile data is decrypted.

Every read names a subject, the fields or kinds wanted, a purpose and an actor. The gate checks
the purpose exists, that its legal basis holds for the person (their consent, for a
consent-based purpose), that the person has not restricted processing, and that each field may
serve the purpose; then it decrypts only what was permitted and writes one audit entry naming
the fields, actor and purpose (never the values). The person's own rights (access, export,
rectification) use the `data-subject-rights` purpose, which every field serves.

Import the gate from here; its modules, by topic:

- `planning`: the purpose, consent, restriction and field checks, and the read plan;
- `reads`: values, one person's or many people's, earlier values, lookups, ages;
- `writes`: values, validated and audited;
- `records`: documents and events, stored and read back;
- `indexes`: blind indexes of searchable values, and their recomputation;
- `resealing`: re-encryption under another person's key, for identity resolution;
- `rights`: what the rights app keeps sealed (request details, export bundles), which it passes in;
- `social`: sealed social-login data and pending sign-in state, which accounts passes in;
- `actors`: who asks; `decrypt`: the gate's own decryption of rows.

A test fails if a module outside this package calls the decryption primitives
(`vault.fields.unseal*`, `vault.crypto.decrypt*`) or imports one of its modules.
"""

from profiles.gate.actors import Actor
from profiles.gate.indexes import profile_field_reindex, value_index
from profiles.gate.planning import ACCOUNT_PURPOSE, RIGHTS_PURPOSE, check_access, definitions_for
from profiles.gate.reads import (
    EarlierValue,
    FieldValue,
    profile_ages,
    profile_birth_date,
    profile_find,
    profile_history_read,
    profile_read,
    profile_read_many,
)
from profiles.gate.records import (
    EventWrite,
    Record,
    profile_events_write,
    profile_record_write,
    profile_records_count,
    profile_records_read,
)
from profiles.gate.resealing import reseal
from profiles.gate.rights import rights_rows_unseal
from profiles.gate.social import SocialAccountData, SocialTokenValue, social_account_unseal, social_pending_unseal
from profiles.gate.writes import profile_values_check, profile_write

__all__ = [
    "ACCOUNT_PURPOSE",
    "RIGHTS_PURPOSE",
    "Actor",
    "EarlierValue",
    "EventWrite",
    "FieldValue",
    "Record",
    "SocialAccountData",
    "SocialTokenValue",
    "check_access",
    "definitions_for",
    "profile_ages",
    "profile_birth_date",
    "profile_events_write",
    "profile_field_reindex",
    "profile_find",
    "profile_history_read",
    "profile_read",
    "profile_read_many",
    "profile_record_write",
    "profile_records_count",
    "profile_records_read",
    "profile_values_check",
    "profile_write",
    "reseal",
    "rights_rows_unseal",
    "social_account_unseal",
    "social_pending_unseal",
    "value_index",
]
