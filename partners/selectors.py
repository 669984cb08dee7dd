"""Reads of the partners app: whom a pairwise id names for a client."""

import uuid

from partners.models import PairwiseId, PartnerClient
from profiles.selectors import profile_survivor


def subject_of(*, client: PartnerClient, pairwise: str) -> uuid.UUID | None:
    """The person `client` knows as `pairwise` (after a merge, the survivor), or None: an id
    never shown to this client (another client's, or made up) names nobody."""
    subject = PairwiseId.objects.filter(client=client, pairwise=pairwise).values_list("subject_id", flat=True).first()
    return None if subject is None else profile_survivor(subject_id=subject)
