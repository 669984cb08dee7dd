"""The bundle's files: JSON (the exact data, for machines: Art. 20's portability), CSV of the
tables (for a spreadsheet), and a README in plain HTML for the person, all in one zip.

The zip is deterministic for given parts: files in a fixed order, each stamped with the export's
own time, JSON with sorted keys.
"""

import csv
import datetime
import decimal
import io
import json
import zipfile
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.utils.html import format_html, format_html_join

from rights.export.parts import ExportParts, Row

# (file, what it holds), in the order of the zip and of the README.
FILES: tuple[tuple[str, str], ...] = (
    ("README.html", "This page."),
    (
        "profile.json",
        "Your profile: each value with its field (name, label, type), category, where it came from, "
        "when it was collected, the legal basis it is held on, the purposes it serves and when it will be deleted. "
        "It also names your account: its id and the e-mail address you sign in with.",
    ),
    ("history.json", "Earlier values of your profile that were replaced (corrected), kept until their retention ends."),
    ("documents.json", "Documents held about you (one per kind and source), with their source and dates."),
    ("events.json", "Activity recorded about you (transactions, behaviour), newest first."),
    (
        "consents.json",
        "Every consent choice you made (grants, withdrawals, refusals), oldest first, with the exact "
        "policy version (and its SHA-256) you saw; each choice's receipt as readable JSON and as a signed JWS.",
    ),
    (
        "connected_accounts.json",
        "Accounts at other services you linked for signing in, and what each sent us. Their "
        "access tokens are held encrypted; this file says that they are held and when they expire, never their value.",
    ),
    ("access_log.json", "Who read or changed your data, when, which fields and for which purpose, newest first."),
    ("requests.json", "Your requests about your data (access, export, erasure...), with their status and dates."),
    ("profile.csv", "profile.json as a table."),
    ("history.csv", "history.json as a table."),
    ("events.csv", "events.json as a table (each event's content as JSON in one column)."),
    ("consents.csv", "consents.json as a table (without the receipts)."),
    ("access_log.csv", "access_log.json as a table."),
)

# Columns of each CSV table, in order; a list or dict cell is written as JSON.
CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "profile.csv": (
        "key", "label", "type", "category", "value", "source", "source_name", "legal_basis",
        "collected_at", "expires_at", "purposes",
    ),
    "history.csv": ("key", "label", "value", "source", "source_name", "collected_at", "replaced_at"),
    "events.csv": ("id", "kind", "occurred_at", "source", "source_name", "expires_at", "body"),
    "consents.csv": (
        "id", "occurred_at", "purpose", "purpose_name", "legal_basis", "event", "policy_version",
        "policy_sha256", "method", "by", "jurisdiction", "ip_address_hash", "browser_family",
    ),
    "access_log.csv": ("when", "action", "purpose", "fields", "actor", "actor_name"),
}  # fmt: skip

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): such text
# is written with a leading apostrophe, which spreadsheets show as text. The JSON keeps it exact.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"Cannot export a {type(value).__name__}.")


def json_bytes(document: Any) -> bytes:
    return json.dumps(document, default=_json_default, ensure_ascii=False, indent=2, sort_keys=True).encode()


# List columns written as "a; b": a profile value's purposes, an audit entry's fields.
_JOINED = frozenset({"purposes", "fields"})


def _cell(value: Any, column: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if column in _JOINED and isinstance(value, list):
        value = "; ".join(item["slug"] if isinstance(item, dict) else str(item) for item in value)
    elif isinstance(value, list | dict):
        value = json.dumps(value, default=_json_default, ensure_ascii=False, sort_keys=True)
    elif isinstance(value, datetime.datetime | datetime.date | decimal.Decimal | bytes):
        value = _json_default(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_bytes(rows: Iterable[Row], columns: tuple[str, ...]) -> bytes:
    """UTF-8 with a byte-order mark (so spreadsheets read accents right), CRLF line ends."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column), column) for column in columns])
    return ("\ufeff" + out.getvalue()).encode()


def readme_html(parts: ExportParts) -> bytes:
    """A short page for the person: what each file is, when it was made, who the controller is,
    how to check the receipts. Every value is escaped."""
    controller = settings.VAULT_CONTROLLER
    files = format_html_join("\n", "<tr><td><code>{}</code></td><td>{}</td></tr>", FILES)
    counts = format_html_join(
        "\n",
        "<li>{}: {}</li>",
        (
            ("Profile values", len(parts.profile)),
            ("Earlier values", len(parts.history)),
            ("Documents", len(parts.documents)),
            ("Events", len(parts.events)),
            ("Consent choices", len(parts.consents)),
            ("Connected accounts", len(parts.connected_accounts)),
            ("Access log entries", len(parts.access_log)),
            ("Requests", len(parts.requests)),
        ),
    )
    page = format_html(
        """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Your data</title>
<style>body{{font-family:sans-serif;max-width:48em;margin:2em auto;line-height:1.5}}
td{{vertical-align:top;padding:.2em .6em}}code{{white-space:nowrap}}</style></head>
<body>
<h1>Your data</h1>
<p>This is a copy of the personal data {controller} holds about you, made on
<time datetime="{iso}">{made}</time> at your request (GDPR articles 15 and 20).
Your account id is <code>{subject}</code>.</p>
<ul>
{counts}
</ul>
<h2>The files</h2>
<p>The <code>.json</code> files hold the exact data, for you or another service to read.
The <code>.csv</code> files are the same tables for a spreadsheet; there, a text that starts
with <code>=</code>, <code>+</code>, <code>-</code> or <code>@</code> is written with an apostrophe
in front so that a spreadsheet does not run it as a formula. Times are in UTC (ISO 8601).</p>
<table>
{files}
</table>
<h2>Checking your consent receipts</h2>
<p>Each choice in <code>consents.json</code> has a receipt in two forms: <code>receipt</code>, readable,
and <code>receipt_jws</code>, the same receipt signed by us (a JSON Web Signature, EdDSA/Ed25519).
To check that a receipt is genuine and unchanged, verify its <code>receipt_jws</code> with any JOSE
library against our public keys at <a href="{jwks}">{jwks}</a> (the key is named by the
signature's <code>kid</code>); the verified content must equal <code>receipt</code>.</p>
<h2>Who we are</h2>
<p>{controller}, {address}.<br>
{contact}: <a href="mailto:{email}">{email}</a>, {phone}, <a href="{url}">{url}</a>.</p>
<p>Questions about this copy, or want something corrected or erased? Contact us, or use the
privacy centre of your account.</p>
</body>
</html>
""",
        controller=controller["name"],
        iso=parts.generated_at.isoformat(),
        made=parts.generated_at.strftime("%d %B %Y, %H:%M UTC"),
        subject=str(parts.subject_id),
        counts=counts,
        files=files,
        jwks=settings.VAULT_SITE_URL + "/.well-known/jwks.json",
        address=controller["address"],
        contact=controller["contact"],
        email=controller["email"],
        phone=controller["phone"],
        url=controller["url"],
    )
    return str(page).encode()


def export_files(parts: ExportParts) -> dict[str, bytes]:
    """Every file of the bundle, by name, in the order of `FILES`."""
    generated = parts.generated_at.isoformat()
    contents: dict[str, bytes] = {
        "README.html": readme_html(parts),
        "profile.json": json_bytes({"generated_at": generated, "account": parts.account, "values": parts.profile}),
        "history.json": json_bytes({"generated_at": generated, "earlier_values": parts.history}),
        "documents.json": json_bytes({"generated_at": generated, "documents": parts.documents}),
        "events.json": json_bytes({"generated_at": generated, "events": parts.events}),
        "consents.json": json_bytes({"generated_at": generated, "consents": parts.consents}),
        "connected_accounts.json": json_bytes({"generated_at": generated, "accounts": parts.connected_accounts}),
        "access_log.json": json_bytes({"generated_at": generated, "entries": parts.access_log}),
        "requests.json": json_bytes({"generated_at": generated, "requests": parts.requests}),
    }
    tables = {
        "profile.csv": parts.profile,
        "history.csv": parts.history,
        "events.csv": parts.events,
        "consents.csv": parts.consents,
        "access_log.csv": parts.access_log,
    }
    for name, rows in tables.items():
        contents[name] = csv_bytes(rows, CSV_COLUMNS[name])
    return {name: contents[name] for name, _ in FILES}


def zip_bytes(files: dict[str, bytes], *, stamp: datetime.datetime) -> bytes:
    """The files in one zip (deflated), each dated `stamp` so equal content gives an equal zip."""
    buffer = io.BytesIO()
    date_time = stamp.timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            archive.writestr(info, content)
    return buffer.getvalue()
