"""The daily digest to the privacy team: requests overdue or due within seven days. It names
requests by id, kind and deadline only; the admin shows the rest."""

from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse
from django.utils import timezone

from rights.selectors import queue_flags, unscoped_due_soon


def rights_digest_send() -> dict[str, Any]:
    """Mail `RIGHTS_DIGEST_TO`; nothing when no address is set or nothing is due soon."""
    recipients = settings.RIGHTS_DIGEST_TO
    now = timezone.now()
    due = unscoped_due_soon(now=now)
    if not recipients or not due:
        return {"sent": False, "requests": len(due)}
    lines = []
    for request in due:
        flag = "OVERDUE" if queue_flags(request, now).overdue else "due soon"
        lines.append(f"- {request.kind:<13} {request.status:<11} due {request.deadline:%Y-%m-%d}  {flag}  {request.pk}")
    queue = settings.VAULT_SITE_URL.rstrip("/") + reverse("admin:rights_rightsrequest_changelist")
    body = (
        f"{len(due)} data-subject request(s) are overdue or due within seven days:\n\n"
        + "\n".join(lines)
        + f"\n\nThe queue: {queue}\n"
    )
    send_mail(
        subject=f"[{settings.VAULT_CONTROLLER['name']}] {len(due)} data-subject request(s) due soon",
        message=body,
        from_email=None,
        recipient_list=list(recipients),
    )
    return {"sent": True, "requests": len(due)}
