"""The privacy centre and the person's requests, as pages: ask for a copy of your data, follow a
request, download an export, restrict processing, object, ask for a correction, opt out of sale
and sharing, and delete your account. Each page calls the same services as the API.

The subject is always the signed-in person (`request.user`), never a parameter. Pages that
disclose or destroy data send the person through allauth's re-authentication (the second-factor
one when they have a second factor) and back."""

import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from consent.gpc import request_evidence
from profiles.gate import Actor
from profiles.selectors import person_fields, profile_is_restricted
from rights.api import zip_response
from rights.errors import MfaRequired, ReauthenticationRequired
from rights.models import Channel, ExportBundle, Kind, Verification
from rights.selectors import pending_erasure_of, rights_request_of, rights_requests_of
from rights.services import (
    export_download,
    objectable_purposes,
    restriction_lift,
    rights_request_cancel,
    rights_request_submit,
    sale_sharing_opt_out,
    sensitive_use_limit,
)
from rights.verification import proof_of
from vault.errors import ApplicationError


def _subject(request: HttpRequest) -> uuid.UUID:
    subject = request.user.pk
    assert isinstance(subject, uuid.UUID)  # login_required
    return subject


def _reauthenticate(request: HttpRequest, error: ApplicationError, back: str) -> HttpResponse:
    """Off to allauth's re-authentication (the second factor's, when that is what is missing),
    then back to `back`, where the person repeats their step."""
    view = "mfa_reauthenticate" if isinstance(error, MfaRequired) else "account_reauthenticate"
    messages.info(request, _("For your safety, confirm it is you first; then repeat your request."))
    return HttpResponseRedirect(f"{reverse(view)}?{urlencode({'next': back})}")


def _fail(request: HttpRequest, error: ApplicationError) -> None:
    for problem in error.problems:
        messages.error(request, problem.message)


@login_required
@require_http_methods(["GET"])
def privacy(request: HttpRequest) -> HttpResponse:
    """The privacy centre: every right, and the person's requests with their status."""
    subject = _subject(request)
    editable = {field.key for field in person_fields() if field.person_can_edit}
    return render(
        request,
        "rights/privacy.html",
        {
            "controller": settings.VAULT_CONTROLLER,
            "requests": list(rights_requests_of(subject_id=subject)[:50]),
            "restricted": profile_is_restricted(subject_id=subject),
            "objectable": objectable_purposes(subject_id=subject),
            "pending_erasure": pending_erasure_of(subject_id=subject),
            "can_rectify": any(field.key not in editable for field in person_fields()),
        },
    )


@login_required
@require_POST
def request_create(request: HttpRequest) -> HttpResponse:
    """Ask for access or an export (after re-authentication), restrict processing, or object."""
    subject = _subject(request)
    kind = request.POST.get("kind", "")
    back = reverse("rights:privacy")
    try:
        if kind not in (Kind.ACCESS, Kind.EXPORT, Kind.RESTRICTION, Kind.OBJECTION):
            raise ApplicationError(_("Choose what to ask for."), param="kind")
        verification: str = Verification.SESSION
        if kind in (Kind.ACCESS, Kind.EXPORT):
            verification = proof_of(user=request.user, session=request.session)
        made = rights_request_submit(
            subject_id=subject,
            kind=kind,
            channel=Channel.PORTAL,
            verification=verification,
            actor=Actor.person(subject),
            purposes=request.POST.getlist("purposes"),
            evidence=request_evidence(request),
        )
    except (ReauthenticationRequired, MfaRequired) as error:
        return _reauthenticate(request, error, back)
    except ApplicationError as error:
        _fail(request, error)
        return redirect(back)
    messages.success(request, _("Your request was received."))
    return redirect("rights:request", request_id=made.pk)


@login_required
@require_http_methods(["GET"])
def request_detail(request: HttpRequest, request_id: uuid.UUID) -> HttpResponse:
    found = rights_request_of(subject_id=_subject(request), request_id=request_id)
    if found is None:
        raise Http404
    bundle = ExportBundle.objects.filter(request=found).first()
    return render(request, "rights/request.html", {"item": found, "bundle": bundle})


@login_required
@require_POST
def request_cancel(request: HttpRequest, request_id: uuid.UUID) -> HttpResponse:
    try:
        rights_request_cancel(subject_id=_subject(request), request_id=request_id)
    except ApplicationError as error:
        _fail(request, error)
    else:
        messages.success(request, _("Your request was cancelled."))
    return redirect("rights:request", request_id=request_id)


@login_required
@require_http_methods(["GET"])
def export_file(request: HttpRequest, request_id: uuid.UUID) -> HttpResponse:
    """The export's zip, after a recent re-authentication; then straight back here."""
    subject = _subject(request)
    found = rights_request_of(subject_id=subject, request_id=request_id)
    bundle = None if found is None else ExportBundle.objects.filter(request=found).first()
    if bundle is None:
        raise Http404
    try:
        proof_of(user=request.user, session=request.session)
        content, bundle = export_download(subject_id=subject, bundle_id=bundle.pk, actor=Actor.person(subject))
    except (ReauthenticationRequired, MfaRequired) as error:
        return _reauthenticate(request, error, request.get_full_path())
    except ApplicationError as error:
        _fail(request, error)
        return redirect("rights:request", request_id=request_id)
    return zip_response(content, bundle)


@login_required
@require_POST
def restriction(request: HttpRequest) -> HttpResponse:
    subject = _subject(request)
    if request.POST.get("action") == "lift":
        restriction_lift(subject_id=subject, actor=Actor.person(subject))
        messages.success(request, _("The restriction is lifted: your data is used again as you agreed."))
        return redirect("rights:privacy")
    return request_create(request)


@login_required
@require_http_methods(["GET", "POST"])
def erase(request: HttpRequest) -> HttpResponse:
    """Delete the account: an explicit confirmation after re-authentication, then a grace period."""
    subject = _subject(request)
    error_text = ""
    if request.method == "POST":
        try:
            made = rights_request_submit(
                subject_id=subject,
                kind=Kind.ERASURE,
                channel=Channel.PORTAL,
                verification=proof_of(user=request.user, session=request.session),
                actor=Actor.person(subject),
                confirm=request.POST.get("confirm") == "yes",
            )
        except (ReauthenticationRequired, MfaRequired) as error:
            return _reauthenticate(request, error, reverse("rights:erase"))
        except ApplicationError as error:
            error_text = error.message
        else:
            messages.success(request, _("Your account will be deleted when the grace period ends, unless you cancel."))
            return redirect("rights:request", request_id=made.pk)
    return render(
        request,
        "rights/erase.html",
        {
            "pending": pending_erasure_of(subject_id=subject),
            "grace_hours": settings.RIGHTS_ERASURE_GRACE_HOURS,
            "error": error_text,
        },
        status=400 if error_text else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def rectify(request: HttpRequest) -> HttpResponse:
    """Ask staff to correct a field the person may not edit themselves."""
    subject = _subject(request)
    fields = [field for field in person_fields() if not field.person_can_edit]
    errors: dict[str | None, str] = {}
    if request.method == "POST":
        key, value = request.POST.get("field", ""), request.POST.get("value", "")
        try:
            made = rights_request_submit(
                subject_id=subject,
                kind=Kind.RECTIFICATION,
                channel=Channel.PORTAL,
                verification=proof_of(user=request.user, session=request.session),
                actor=Actor.person(subject),
                values={key: value},
            )
        except (ReauthenticationRequired, MfaRequired) as error:
            return _reauthenticate(request, error, reverse("rights:rectify"))
        except ApplicationError as error:
            for problem in error.problems:
                errors.setdefault(problem.param if problem.param in ("field", key) else None, problem.message)
        else:
            messages.success(request, _("Your correction was sent; we will confirm when it is made."))
            return redirect("rights:request", request_id=made.pk)
    return render(
        request,
        "rights/rectify.html",
        {"fields": fields, "errors": errors, "posted": request.POST},
        status=400 if errors else 200,
    )


def _opt_out(request: HttpRequest, template: str, service: str) -> HttpResponse:
    subject = _subject(request)
    if request.method == "POST":
        run = sale_sharing_opt_out if service == "sale" else sensitive_use_limit
        recorded = run(subject_id=subject, channel=Channel.PORTAL, evidence=request_evidence(request))
        messages.success(
            request,
            _("Done: %(count)s choice(s) recorded, each with a receipt on your consents page.")
            % {"count": len(recorded)},
        )
        return redirect("rights:privacy")
    return render(request, template)


@login_required
@require_http_methods(["GET", "POST"])
def do_not_sell(request: HttpRequest) -> HttpResponse:
    """CCPA "Do Not Sell or Share My Personal Information"."""
    return _opt_out(request, "rights/do_not_sell.html", "sale")


@login_required
@require_http_methods(["GET", "POST"])
def limit_sensitive(request: HttpRequest) -> HttpResponse:
    """CCPA "Limit the Use of My Sensitive Personal Information"."""
    return _opt_out(request, "rights/limit_sensitive.html", "sensitive")
