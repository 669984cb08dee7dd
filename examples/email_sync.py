"""A reference partner client: an e-mail service keeping its mailing list in step with the vault.

It uses only the standard library, `requests` and `standardwebhooks`:

- authenticates with its API key (`Authorization: Bearer <key>`);
- pulls its audience (`audience_pull`): the people it knows, kept only while they consent to its
  purpose (the consent check; swap in the audience export when your vault has it);
- posts engagement events (`engagement_post`: opens and clicks, in one batch, idempotent);
- receives webhooks (`serve`), verifying each Standard Webhooks signature, and keeps its local
  copy in step: `consent.changed` adds or drops a person, `subject.erased` deletes the local copy.

    python examples/email_sync.py --vault http://127.0.0.1:8000 --key "$KEY" --secret "$WHSEC" \\
        --purpose loyalty-programme --listen 127.0.0.1:8765 --db mailing-list.sqlite3

The local copy (SQLite) holds pairwise ids only: what the vault tells this client, nothing more.
"""

import argparse
import json
import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from standardwebhooks import Webhook, WebhookVerificationError

TIMEOUT = 10  # seconds


class MailingList:
    """The e-mail service's local copy: one row per person (the vault's pairwise id for us)."""

    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS person (id TEXT PRIMARY KEY, subscribed INTEGER NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS seen (message_id TEXT PRIMARY KEY)")

    def upsert(self, person: str, *, subscribed: bool) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO person (id, subscribed) VALUES (?, ?)", (person, int(subscribed)))

    def delete(self, person: str) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM person WHERE id = ?", (person,))

    def people(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT id FROM person ORDER BY id")]

    def subscribed(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT id FROM person WHERE subscribed = 1 ORDER BY id")]

    def first_time(self, message_id: str) -> bool:
        """Whether this webhook message is new (webhooks are delivered at least once)."""
        with self._lock, self._db:
            return self._db.execute("INSERT OR IGNORE INTO seen (message_id) VALUES (?)", (message_id,)).rowcount == 1


class Vault:
    """The vault's partner API, as this client calls it."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {key}", "Accept": "application/json"})

    def consent_granted(self, person: str, purpose: str) -> bool | None:
        """Whether `person` consents to `purpose` now; None when the vault knows no such person."""
        answer = self.session.get(f"{self.base_url}/api/v1/partner/people/{person}/consent/{purpose}/", timeout=TIMEOUT)
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return bool(answer.json()["granted"])

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
        return self.session.post(f"{self.base_url}{path}", json=body, headers=headers, timeout=TIMEOUT)


def audience_pull(vault: Vault, mailing_list: MailingList, purpose: str) -> list[str]:
    """Bring the local list up to date and return whom we may e-mail. Every known person is
    checked (the consent check); one the vault no longer knows is deleted locally."""
    for person in mailing_list.people():
        granted = vault.consent_granted(person, purpose)
        if granted is None:
            mailing_list.delete(person)
        else:
            mailing_list.upsert(person, subscribed=granted)
    return mailing_list.subscribed()


def engagement_event(person: str, action: str, campaign: str) -> dict[str, Any]:
    """One `email_engagement` event (an open or a click) as the vault's event ingestion takes it."""
    occurred_at = datetime.now(UTC).isoformat(timespec="seconds")
    return {"person": person, "kind": "email_engagement", "occurred_at": occurred_at, "body": {action: campaign}}


def engagement_post(vault: Vault, events: Iterable[dict[str, Any]], *, batch_key: str) -> dict[str, Any]:
    """Send opens and clicks in one batch (`POST /api/v1/partner/events/`), with an idempotency
    key so a retry stores nothing twice. The answer counts accepted and refused items; a person
    who no longer consents is refused (404 in `refusals`), never an error for the batch."""
    answer = vault.post("/api/v1/partner/events/", {"events": list(events)}, headers={"Idempotency-Key": batch_key})
    answer.raise_for_status()
    return answer.json()


def webhook_handle(mailing_list: MailingList, message: dict[str, Any]) -> None:
    """Apply one verified webhook to the local copy."""
    data = message.get("data", {})
    person = data.get("person")
    if message.get("type") == "subject.erased" and person:
        mailing_list.delete(person)  # the vault erased them: our copy goes too
    elif message.get("type") == "consent.changed" and person:
        mailing_list.upsert(person, subscribed=data.get("status") == "granted")


def serve(mailing_list: MailingList, secret: str, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A webhook receiver in a background thread: verifies each signature (400 when it does not
    hold, nothing applied), applies each message once, answers 204. Returns the server (its
    `server_address` has the port)."""
    verifier = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                message = verifier.verify(body, dict(self.headers.items()))
            except WebhookVerificationError:
                self._answer(400)
                return
            if mailing_list.first_time(self.headers["webhook-id"]):
                webhook_handle(mailing_list, message)
            self._answer(204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vault", required=True, help="The vault's base URL")
    parser.add_argument("--key", required=True, help="This client's API key")
    parser.add_argument("--secret", required=True, help="This client's webhook signing secret (whsec_...)")
    parser.add_argument("--purpose", default="email-marketing")
    parser.add_argument("--listen", default="127.0.0.1:8765", help="host:port for webhooks")
    parser.add_argument("--db", default="mailing-list.sqlite3")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    mailing_list = MailingList(args.db)
    vault = Vault(args.vault, args.key)
    server = serve(mailing_list, args.secret, host, int(port))
    print(
        json.dumps(
            {"listening": server.server_address[1], "audience": len(audience_pull(vault, mailing_list, args.purpose))}
        )
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
