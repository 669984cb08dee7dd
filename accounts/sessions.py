"""The session backend (`SESSION_ENGINE`): Django's database sessions, with allauth's pending
sign-in state sealed at rest.

While a person reads the social sign-up screen, allauth keeps the whole social login (tokens,
the provider's answer, the e-mail address) in the session, and a serialized request while it asks
someone to confirm their password. The session table only signs its data. Sealing in the backend
rather than in a middleware covers every way a session is loaded: the browser's cookie, and the
`X-Session-Token` of allauth's headless app clients, which load their session inside the view.
"""

import re
from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

from accounts.social import session_pending_seal, session_pending_unseal

# Django makes session keys of 32 lower-case letters and digits; anything else in a cookie (a NUL
# byte decoded from a quoted cookie reached PostgreSQL and answered 500) is no session at all.
_SESSION_KEY = re.compile(r"[a-z0-9]{32}")


class SessionStore(DatabaseSessionStore):
    def _validate_session_key(self, key: str | None) -> bool:
        return bool(key) and _SESSION_KEY.fullmatch(key or "") is not None

    def encode(self, session_dict: dict[str, Any]) -> str:
        return super().encode(session_pending_seal(session_dict))

    def decode(self, session_data: bytes | str) -> dict[str, Any]:
        return session_pending_unseal(super().decode(session_data))
