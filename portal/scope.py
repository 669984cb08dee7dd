"""The signed-in person, as every portal page sees them: the subject is `request.user`, never a
parameter, so no page can be pointed at someone else."""

import uuid

from django.http import HttpRequest


def portal_subject(request: HttpRequest) -> uuid.UUID:
    """The signed-in person's subject id (pages call it behind `login_required`)."""
    subject = request.user.pk
    assert isinstance(subject, uuid.UUID)  # login_required
    return subject
