"""Reads of the partners app: whom a pairwise id names for a client."""

import uuid
from collections.abc import Iterable

from partners.models import PairwiseId, PartnerClient
from profiles.selectors import profile_survivor, profile_survivors


def subject_of(*, client: PartnerClient, pairwise: str) -> uuid.UUID | None:
    """The person `client` knows as `pairwise` (after a merge, the survivor), or None: an id
    never shown to this client (another client's, or made up) names nobody."""
    subject = PairwiseId.objects.filter(client=client, pairwise=pairwise).values_list("subject_id", flat=True).first()
    return None if subject is None else profile_survivor(subject_id=subject)


def subjects_of(*, client: PartnerClient, pairwise_ids: Iterable[str]) -> dict[str, uuid.UUID]:
    """`subject_of` for many ids at once (a batch of events): {pairwise id: person}, in a fixed
    number of queries; ids that name nobody for this client are absent."""
    found = dict(
        PairwiseId.objects.filter(client=client, pairwise__in=set(pairwise_ids)).values_list("pairwise", "subject_id")
    )
    survivors = profile_survivors(subject_ids=found.values())
    return {pairwise: survivors[subject] for pairwise, subject in found.items()}
