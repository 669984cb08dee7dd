"""Erasure of a person's consent ledger (DESIGN.md invariant 3, docs/consent.md "Erasure").

The rows are deleted, not pseudonymised: an event without its subject id would still carry the
IP address hash, browser family and jurisdiction that can link it back to the person. Pending
double opt-in and parental requests are ledger events and projection rows too, so they go with
the rest, and a link mailed earlier then names no request (`InvalidLink`).

The projection stays in step with the ledger after every call (`consent_rebuild --check`
passes at any point of an erasure): only the latest event of each purpose decides the
projection, so the superseded events go first, in bounded batches, and the latest ones (one per
purpose) go together with the projection rows in the last call."""

import uuid

from django.db import transaction
from django.db.models import Exists, OuterRef

from consent.models import ConsentEvent, ConsentState


def consent_ledger_erase(*, subject_id: uuid.UUID, batch_size: int = 1000) -> int:
    """Delete the person's consent events and projection rows; at most `batch_size` superseded
    events per call, then the rest. Returns how many rows this call deleted: 0 when nothing is
    left, so a task loops until then. Writes no audit entry: the rights app writes the erasure's
    one tombstone."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    subject_id = uuid.UUID(str(subject_id))
    events = ConsentEvent.objects.filter(subject_id=subject_id)
    later = ConsentEvent.objects.filter(
        subject_id=subject_id, purpose_id=OuterRef("purpose_id"), seq__gt=OuterRef("seq")
    )
    with transaction.atomic():
        # The services lock a projection row before they record an event: a choice arriving
        # now waits, and finds the ledger either whole or gone.
        list(ConsentState.objects.filter(subject_id=subject_id).select_for_update().values_list("pk", flat=True))
        superseded = list(events.filter(Exists(later)).order_by().values_list("pk", flat=True)[:batch_size])
        deleted = ConsentEvent.objects.filter(pk__in=superseded).delete()[0] if superseded else 0
        if len(superseded) < batch_size:
            # Only the latest event of each purpose is left: it goes with the projection row.
            deleted += events.delete()[0]
            deleted += ConsentState.objects.filter(subject_id=subject_id).delete()[0]
    return deleted
