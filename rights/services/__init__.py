"""Writes of the rights app, by topic; every surface (portal, API, admin, tasks, commands) calls
these, and everything is importable from `rights.services`:

- `requests`: a request's life (received, verified, extended, rejected, cancelled, legal hold),
  each transition audited;
- `flow`: a request submitted, verified or completed, routed to what its kind needs;
- `export`: the access and export bundle, built by a job, sealed, downloaded, expired;
- `erasure`: the grace period, the moment of erasure, and the purge of the rows;
- `processing`: restriction, objection, the CCPA opt-outs, rectification by staff;
- `digest`: the daily mail of requests due soon.
"""

from rights.services.digest import rights_digest_send
from rights.services.erasure import (
    erasure_execute,
    erasure_now,
    erasure_purge,
    erasure_purge_all,
    erasure_replay,
    erasures_due,
)
from rights.services.export import export_bundle_build, export_download, exports_expire
from rights.services.flow import rights_request_complete, rights_request_submit, rights_request_verify
from rights.services.processing import (
    objectable_purposes,
    restriction_lift,
    sale_sharing_opt_out,
    sensitive_use_limit,
)
from rights.services.requests import (
    rights_legal_hold_lift,
    rights_legal_hold_set,
    rights_request_cancel,
    rights_request_extend,
    rights_request_reject,
)

__all__ = [
    "erasure_execute",
    "erasure_now",
    "erasure_purge",
    "erasure_purge_all",
    "erasure_replay",
    "erasures_due",
    "export_bundle_build",
    "export_download",
    "exports_expire",
    "objectable_purposes",
    "restriction_lift",
    "rights_digest_send",
    "rights_legal_hold_lift",
    "rights_legal_hold_set",
    "rights_request_cancel",
    "rights_request_complete",
    "rights_request_extend",
    "rights_request_reject",
    "rights_request_submit",
    "rights_request_verify",
    "sale_sharing_opt_out",
    "sensitive_use_limit",
]
