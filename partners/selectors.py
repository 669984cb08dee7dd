"""Reads of the partners app: whom a pairwise id names for a client."""

import uuid
from collections.abc import Iterable

from partners.models import PairwiseId, PartnerClient
from profiles.selectors import profile_survivor


def subject_of(*, client: PartnerClient, pairwise: str) -> uuid.UUID | None:
    """The person `client` knows as `pairwise` (after a merge, the survivor), or None: an id
    never shown to this client (another client's, or made up) names nobody."""
    subject = PairwiseId.objects.filter(client=client, pairwise=pairwise).values_list("subject_id", flat=True).first()
    return None if subject is None else profile_survivor(subject_id=subject)


def pairwise_known(*, client: PartnerClient, subject_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The ids already shown to `client` for these people (none is made): whom it knows."""
    rows = PairwiseId.objects.filter(client=client, subject_id__in=list(subject_ids))
    return dict(rows.values_list("subject_id", "pairwise"))
