"""Reads of the partners app: whom a pairwise id names for a client."""

import uuid

from django.db.models import QuerySet

from partners.errors import SegmentNotFound
from partners.models import PairwiseId, PartnerClient, Segment
from profiles.selectors import profile_survivor


def subject_of(*, client: PartnerClient, pairwise: str) -> uuid.UUID | None:
    """The person `client` knows as `pairwise` (after a merge, the survivor), or None: an id
    never shown to this client (another client's, or made up) names nobody."""
    subject = PairwiseId.objects.filter(client=client, pairwise=pairwise).values_list("subject_id", flat=True).first()
    return None if subject is None else profile_survivor(subject_id=subject)


def segments_of(*, client: PartnerClient) -> QuerySet[Segment]:
    """The client's own segments, newest first: the only way the API lists them."""
    return Segment.objects.filter(client=client).order_by("-created_at", "id")


def segment_of(*, client: PartnerClient, segment_id: uuid.UUID) -> Segment:
    """One of the client's segments; another client's, or none, is `SegmentNotFound`."""
    segment = segments_of(client=client).select_related("client").filter(pk=segment_id).first()
    if segment is None:
        raise SegmentNotFound()
    return segment
