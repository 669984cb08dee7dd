"""A person's page in the staff admin, the reveal of chosen values, and the search for a person.

The page shows what the vault holds about someone (field names, categories, sources, dates,
consent, requests, connected providers) with every value masked, and opening it is audited. A
reveal reads the chosen values through the access gate for the account-management purpose, as
the staff member, with their typed reason in the one audit entry; the values are rendered once,
in that response only (never in the session or a URL), and a static script hides them again
after STAFF_REVEAL_SECONDS. The person sees both in "who accessed my data".
"""

import contextlib
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from allauth.socialaccount import providers
from django.conf import settings
from django.contrib.admin.sites import site as admin_site
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods

from accounts.models import mask_email
from accounts.selectors import (
    AccountOverview,
    account_ids,
    account_with_login,
    accounts_overview,
    social_providers_of,
)
from consent.errors import ConsentError
from consent.selectors import consent_states
from profiles.errors import FieldNotForPurpose, ProfileError
from profiles.gate import ACCOUNT_PURPOSE, Actor, profile_find, profile_read
from profiles.models import Category, Source
from profiles.selectors import HeldField, profile_fields_overview
from rights.selectors import queue_flags, rights_requests_of
from staff.people.forms import FindForm, RevealForm
from vault.audit import audit_record
from vault.crypto import SubjectErased

MASK = "••••••"
VIEW_PERMISSION = "staff.view_person"
REVEAL_PERMISSION = "staff.reveal_personal_data"
# The purpose staff read under: the contract's "running your account and answering your requests".
STAFF_PURPOSE = ACCOUNT_PURPOSE


def _provider_name(provider: str) -> str:
    """The provider's display name ("Google"), or its id when allauth does not know it."""
    try:
        return str(providers.registry.get_class(provider).name)
    except Exception:  # an OpenID Connect app's own id, or a provider no longer installed
        return provider


def _shown(value: Any) -> str:
    """A released value as text on the page (lists joined, dates in ISO form)."""
    if isinstance(value, list | tuple):
        return ", ".join(_shown(item) for item in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date | datetime | Decimal):
        return value.isoformat() if isinstance(value, date | datetime) else str(value)
    return "" if value is None else str(value)


def _not_for_staff(labels: list[str]) -> str:
    return f"{', '.join(labels)} may not be used for account management (see the field's purposes)."


def _fields_context(held: list[HeldField]) -> list[dict[str, Any]]:
    categories = dict(Category.choices)
    sources = dict(Source.choices)
    return [
        {
            "key": field.key,
            "label": field.label,
            "category": categories.get(field.category, field.category),
            "source": sources.get(field.source, field.source),
            "source_name": field.source_name,
            "collected_at": field.collected_at,
            "expires_at": field.expires_at,
            "for_staff": STAFF_PURPOSE in field.purposes,
            "masked": MASK,
        }
        for field in held
    ]


def _page(
    request: HttpRequest,
    subject_id: uuid.UUID,
    account: AccountOverview | None,
    held: list[HeldField],
    form: RevealForm | None,
    revealed: list[dict[str, str]] | None = None,
) -> TemplateResponse:
    requests = [
        {"request": r, "flags": queue_flags(r), "kind": r.get_kind_display(), "status": r.get_status_display()}
        for r in rights_requests_of(subject_id=subject_id)
    ]
    context = {
        **admin_site.each_context(request),
        "title": f"Person {subject_id}",
        "subject_id": subject_id,
        "account": account,
        "masked_email": mask_email(account.email) if account else "",
        "fields": _fields_context(held),
        "consents": consent_states(subject_id=subject_id),
        "requests": requests,
        "providers": [
            {"name": _provider_name(p.provider), "connected_at": p.connected_at, "last_login": p.last_login}
            for p in social_providers_of(subject_id=subject_id)
        ],
        "form": form,
        "revealed": revealed,
        "reveal_seconds": settings.STAFF_REVEAL_SECONDS,
        "mask": MASK,
    }
    response = TemplateResponse(request, "admin/staff/person.html", context)
    # The admin's views are never cached already; said here too, since revealed values are on it.
    add_never_cache_headers(response)
    return response


def _audit_viewed(request: HttpRequest, subject_id: uuid.UUID) -> None:
    try:
        audit_record(**Actor.staff(request.user.pk).audit(), action="staff.person_viewed", subject_id=subject_id)
    except SubjectErased:
        raise Http404("This person was erased.") from None


def sample_person() -> dict[str, Any]:
    """The person page's URL arguments for someone who has one, an account (the permission matrix
    test opens every console once it has seeded the site's objects)."""
    return {"subject_id": account_ids(limit=1)[0]}


@require_http_methods(["GET", "POST"])
def person_page(request: HttpRequest, subject_id: uuid.UUID) -> HttpResponse:
    """The person's page (GET), or a reveal of some of their values (POST, with a reason)."""
    user = request.user
    if not user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    may_reveal = user.has_perm(REVEAL_PERMISSION)
    if request.method == "POST" and not may_reveal:
        raise PermissionDenied
    account = accounts_overview(subject_ids=[subject_id]).get(subject_id)
    held = profile_fields_overview(subject_id=subject_id)
    if account is None and not held and not rights_requests_of(subject_id=subject_id).exists():
        raise Http404("No one is known by this id.")
    choices = [(field.key, field.label) for field in held]
    if request.method == "GET":
        _audit_viewed(request, subject_id)
        form = RevealForm(choices=choices) if may_reveal else None
        return _page(request, subject_id, account, held, form)

    form = RevealForm(request.POST, choices=choices)
    revealed = _reveal(request, subject_id, held, form) if form.is_valid() else None
    if revealed is None:
        _audit_viewed(request, subject_id)  # the page was shown again, without values
        return _page(request, subject_id, account, held, form)
    # A fresh form: the one just sent is done, and its reason is in the audit entry.
    return _page(request, subject_id, account, held, RevealForm(choices=choices), revealed)


def _reveal(
    request: HttpRequest, subject_id: uuid.UUID, held: list[HeldField], form: RevealForm
) -> list[dict[str, str]] | None:
    """The chosen values, read through the gate (one `profile.reveal` audit entry with the
    reason); None with a form error when the gate refuses."""
    labels = {field.key: field.label for field in held}
    keys: list[str] = form.cleaned_data["chosen"]
    # Named all at once (the gate would stop at the first it refuses).
    refused = [field.label for field in held if field.key in keys and STAFF_PURPOSE not in field.purposes]
    if refused:
        form.add_error("chosen", f"Not revealed: {_not_for_staff(refused)}")
        return None
    try:
        values = profile_read(
            subject_id=subject_id,
            fields=keys,
            purpose=STAFF_PURPOSE,
            actor=Actor.staff(request.user.pk),
            reason=" ".join(form.cleaned_data["reason"].split()),
        )
    except FieldNotForPurpose as error:  # the schema changed since the page was loaded
        form.add_error("chosen", f"Not revealed: {_not_for_staff([labels.get(error.param or '', '?')])}")
        return None
    except (ProfileError, ConsentError, SubjectErased) as error:  # a restriction, an erasure, ...
        form.add_error(None, f"Not revealed: {error.message}")
        return None
    return [
        {"label": labels[key], "value": _shown(values[key].value) if key in values else "(no value)"} for key in keys
    ]


@require_http_methods(["GET", "POST"])
def person_find(request: HttpRequest) -> HttpResponse:
    """Find people by an exact e-mail address (their login, or the profile's contact address
    through its blind index) or phone number (blind index). POST only, so the searched value
    never enters a URL; the audit entry names what was searched, not the value."""
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    found: list[dict[str, Any]] | None = None
    form = FindForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        kind, value = form.cleaned_data["query"]
        actor = Actor.staff(request.user.pk)
        subjects: list[uuid.UUID] = []
        searched = ["login_email", "email"] if kind == "email" else ["phone"]
        if kind == "email":
            login = account_with_login(email=value)
            if login is not None:
                subjects.append(login)
        # Not a possible number, or no such searchable field for this purpose in the schema: no match.
        with contextlib.suppress(ProfileError):
            subjects += profile_find(field=searched[-1], value=value, purpose=STAFF_PURPOSE, actor=actor)
        audit_record(**actor.audit(), action="staff.person_search", fields=searched)
        accounts = accounts_overview(subject_ids=subjects)
        found = [
            {
                "subject_id": subject,
                "masked_email": mask_email(accounts[subject].email) if subject in accounts else "",
                "has_account": subject in accounts,
            }
            for subject in dict.fromkeys(subjects)
        ]
        form = FindForm()  # the value is not echoed back
    context = {**admin_site.each_context(request), "title": "Find a person", "form": form, "found": found}
    return TemplateResponse(request, "admin/staff/person_find.html", context)
