"""My profile: the values held, where each came from and until when it is kept; rectification.
Values are read and written through the access gate with the `data-subject-rights` purpose, like
the API, so every view of one's own data is audited too."""

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from django_countries import countries

from portal.errors import errors_by_param
from portal.scope import portal_subject
from profiles.gate import RIGHTS_PURPOSE, Actor, profile_write
from profiles.models import Category, FieldType, Source
from profiles.selectors import profile_listing
from vault.errors import ApplicationError
from vault.http import MAX_JSON_DEPTH, json_depth

_INPUT_TYPES = {
    FieldType.EMAIL: "email",
    FieldType.PHONE: "tel",
    FieldType.DATE: "date",
    FieldType.INTEGER: "number",
    FieldType.DECIMAL: "text",
    FieldType.URL: "url",
}


@dataclass
class ProfileRow:
    """One field of the profile page: the value held, its provenance, and its form control."""

    key: str
    label: str
    help_text: str
    field_type: str
    category: str
    can_edit: bool
    value: Any
    shown: str  # the value as text for people
    source: str
    source_name: str
    collected_at: Any
    expires_at: Any
    choices: list[tuple[str, str]] = field(default_factory=list)
    submitted: Any = None  # what the form sends back: text, or a list for several choices
    error: str = ""

    @property
    def control(self) -> str:
        if self.field_type in (FieldType.CHOICE, FieldType.BOOLEAN, FieldType.COUNTRY):
            return "select"
        if self.field_type == FieldType.MULTI_CHOICE:
            return "checkboxes"
        if self.field_type == FieldType.JSON:
            return "textarea"
        return "input"

    @property
    def input_type(self) -> str:
        return _INPUT_TYPES.get(FieldType(self.field_type), "text")

    @property
    def input_id(self) -> str:
        return f"field-{self.key}"


def _as_text(field_type: str, value: Any) -> str | list[str]:
    """A held value as the form control shows it."""
    if value is None:
        return [] if field_type == FieldType.MULTI_CHOICE else ""
    if field_type == FieldType.MULTI_CHOICE:
        return [str(item) for item in value]
    if field_type == FieldType.BOOLEAN:
        return "true" if value else "false"
    if field_type == FieldType.JSON:
        return json.dumps(value, ensure_ascii=False, indent=2)
    return str(value)


def _shown(field_type: str, value: Any) -> str:
    if value is None:
        return ""
    if field_type == FieldType.BOOLEAN:
        return _("Yes") if value else _("No")
    if field_type == FieldType.COUNTRY:
        return str(countries.name(value) or value)
    if field_type == FieldType.MULTI_CHOICE:
        return ", ".join(str(item) for item in value)
    if field_type == FieldType.JSON:
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _choices(item: dict[str, Any]) -> list[tuple[str, str]]:
    kind = item["field_type"]
    if kind == FieldType.BOOLEAN:
        return [("true", _("Yes")), ("false", _("No"))]
    if kind == FieldType.COUNTRY:
        return [(code, str(name)) for code, name in countries]
    return [(choice, choice) for choice in item["choices"]]


def _rows(subject: uuid.UUID) -> list[ProfileRow]:
    rows = []
    for item in profile_listing(subject_id=subject):
        kind = item["field_type"]
        rows.append(
            ProfileRow(
                key=item["key"],
                label=item["label"],
                help_text=item["help_text"],
                field_type=kind,
                category=item["category"],
                can_edit=item["can_edit"],
                value=item["value"],
                shown=_shown(kind, item["value"]),
                source=str(Source(item["source"]).label) if item["source"] in Source.values else "",
                source_name=item["source_name"] or "",
                collected_at=item["collected_at"],
                expires_at=item["expires_at"],
                choices=_choices(item),
                submitted=_as_text(kind, item["value"]),
            )
        )
    return rows


class _NotJson(Exception):
    pass


def _changes(rows: list[ProfileRow], data: Any) -> dict[str, Any]:
    """The values the person changed, for `profile_write` (None removes one). Rows keep what
    was submitted, so a form with errors is shown again as the person left it."""
    changes: dict[str, Any] = {}
    for row in rows:
        if not row.can_edit:
            continue
        if row.field_type == FieldType.MULTI_CHOICE:
            submitted: Any = data.getlist(row.key)
        else:
            submitted = data.get(row.key, "").strip()
        if submitted == row.submitted:
            continue
        row.submitted = submitted
        if submitted in ("", []):
            changes[row.key] = None
        elif row.field_type == FieldType.JSON:
            if json_depth(submitted) > MAX_JSON_DEPTH:  # Python's parser recurses: bound it first
                row.error = _("This nests too deeply.")
                continue
            try:
                changes[row.key] = json.loads(submitted)
            except ValueError:
                row.error = _("This is not valid JSON.")
        else:
            changes[row.key] = submitted
    return changes


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    """The person's values, where each came from and until when it is kept; rectification."""
    subject = portal_subject(request)
    rows = _rows(subject)
    status, form_error = 200, ""
    if request.method == "POST":
        changes = _changes(rows, request.POST)
        has_errors = any(row.error for row in rows)
        if not has_errors and not changes:
            messages.info(request, _("Nothing changed."))
            return redirect("portal:profile")
        if not has_errors:
            try:
                profile_write(
                    subject_id=subject,
                    values=changes,
                    source=Source.SELF_SERVICE,
                    purpose=RIGHTS_PURPOSE,
                    actor=Actor.person(subject),
                )
            except ApplicationError as error:
                by_key = {row.key: row for row in rows}
                for param, message in errors_by_param(error).items():
                    if param in by_key:
                        by_key[param].error = message
                    else:
                        form_error = message
            else:
                messages.success(request, _("Saved. Thank you for keeping your profile correct."))
                return redirect("portal:profile")
        status = 400
    groups = []
    for value, label in Category.choices:
        in_group = [row for row in rows if row.category == value]
        if in_group:
            groups.append({"key": value, "label": label, "rows": in_group})
    context = {
        "groups": groups,
        "has_editable": any(row.can_edit for row in rows),
        "form_error": form_error,
        "error_count": sum(1 for row in rows if row.error) + (1 if form_error else 0),
    }
    return render(request, "portal/profile.html", context, status=status)
