"""Security: two-factor authentication (allauth.mfa's pages) and the devices signed in."""

from allauth.mfa.models import Authenticator
from allauth.usersessions.internal.flows.sessions import end_other_sessions
from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST


@login_required
@require_http_methods(["GET"])
def security(request: HttpRequest) -> HttpResponse:
    """Two-factor authentication (allauth.mfa's pages) and the devices signed in."""
    user = request.user
    authenticators = list(Authenticator.objects.filter(user_id=user.pk).only("type", "created_at", "data"))
    kinds = {a.type for a in authenticators}
    sessions = sorted(UserSession.objects.purge_and_list(user), key=lambda s: s.created_at, reverse=True)
    context = {
        "totp": Authenticator.Type.TOTP in kinds,
        "webauthn_count": sum(1 for a in authenticators if a.type == Authenticator.Type.WEBAUTHN),
        "recovery_codes": Authenticator.Type.RECOVERY_CODES in kinds,
        "sessions": [
            {"device": s.user_agent, "created_at": s.created_at, "is_current": s.is_current()} for s in sessions
        ],
        "other_sessions": sum(1 for s in sessions if not s.is_current()),
        "staff_needs_mfa": getattr(user, "is_staff", False) and not (kinds - {Authenticator.Type.RECOVERY_CODES}),
    }
    return render(request, "portal/security.html", context)


@login_required
@require_POST
def sessions_end_others(request: HttpRequest) -> HttpResponse:
    end_other_sessions(request, request.user)
    messages.success(request, _("Signed out everywhere else. This device stays signed in."))
    return redirect("portal:security")
