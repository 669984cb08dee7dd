"""Writes of the profiles app other than values: the schema, restriction, merging, retention,
a source's purge and a person's erasure, one module each.

Values, documents and events are written through `profiles.gate`, which checks and audits them.
Import the services from here.
"""

from profiles.services.erasure import profile_data_erase
from profiles.services.merge import (
    STAFF_MERGE,
    VERIFIED_EMAIL,
    profile_merge,
    profile_merge_by_staff,
    profile_merge_undo,
    profile_merge_verified_email,
)
from profiles.services.restriction import profile_restrict, profile_restriction_lift
from profiles.services.retention import RetentionReport, retention_run
from profiles.services.schema import (
    DEFINITION_ATTRS,
    definition_check,
    field_definition_create,
    field_definition_deprecate,
    field_definition_update,
)
from profiles.services.sources import profile_source_confirm, profile_source_keep, profile_source_purge

__all__ = [
    "DEFINITION_ATTRS",
    "STAFF_MERGE",
    "VERIFIED_EMAIL",
    "RetentionReport",
    "definition_check",
    "field_definition_create",
    "field_definition_deprecate",
    "field_definition_update",
    "profile_data_erase",
    "profile_merge",
    "profile_merge_by_staff",
    "profile_merge_undo",
    "profile_merge_verified_email",
    "profile_restrict",
    "profile_restriction_lift",
    "profile_source_confirm",
    "profile_source_keep",
    "profile_source_purge",
    "retention_run",
]
