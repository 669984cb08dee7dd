from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from consent.models import PolicyVersion


def policy_text(request: HttpRequest, purpose: str, label: str) -> HttpResponse:
    """A published policy text, as receipts link to it: public, with its content hash."""
    version = get_object_or_404(
        PolicyVersion.objects.select_related("purpose"),
        purpose__slug=purpose,
        label=label,
        effective_from__lte=timezone.now(),
    )
    return render(request, "consent/policy.html", {"version": version})
