"""Security: two-factor authentication (allauth.mfa's pages) and the devices signed in."""

from allauth.usersessions.internal.flows.sessions import end_other_sessions
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import User
from accounts.selectors import account_security, account_sessions
from portal.scope import portal_subject


@login_required
@require_http_methods(["GET"])
def security(request: HttpRequest) -> HttpResponse:
    """Two-factor authentication (allauth.mfa's pages) and the devices signed in."""
    user = request.user
    assert isinstance(user, User)  # login_required
    mfa = account_security(subject_id=portal_subject(request))
    sessions = account_sessions(user=user)
    context = {
        "totp": mfa.totp,
        "webauthn_count": mfa.webauthn_count,
        "recovery_codes": mfa.recovery_codes,
        "sessions": [
            {"device": s.user_agent, "created_at": s.created_at, "is_current": s.is_current()} for s in sessions
        ],
        "other_sessions": sum(1 for s in sessions if not s.is_current()),
        "staff_needs_mfa": user.is_staff and not mfa.has_second_factor,
    }
    return render(request, "portal/security.html", context)


@login_required
@require_POST
def sessions_end_others(request: HttpRequest) -> HttpResponse:
    end_other_sessions(request, request.user)
    messages.success(request, _("Signed out everywhere else. This device stays signed in."))
    return redirect("portal:security")
