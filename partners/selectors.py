"""Reads of the partners app: whom a pairwise id names for a client."""

import uuid
from collections.abc import Iterable

from django.db.models import OuterRef

from partners.models import PairwiseId, PartnerClient
from profiles.selectors import profile_survivor, profile_survivor_expression, profile_survivors


def subject_of(*, client: PartnerClient, pairwise: str) -> uuid.UUID | None:
    """The person `client` knows as `pairwise` (after a merge, the survivor), or None: an id
    never shown to this client (another client's, or made up) names nobody."""
    # One query for the id and a first merge; a survivor merged again (rare) is followed further.
    row = (
        PairwiseId.objects.filter(client=client, pairwise=pairwise)
        .annotate(survivor=profile_survivor_expression(OuterRef("subject_id")))
        .values_list("subject_id", "survivor")
        .first()
    )
    if row is None:
        return None
    subject, survivor = row
    return subject if survivor is None else profile_survivor(subject_id=survivor)


def subjects_of(*, client: PartnerClient, pairwise_ids: Iterable[str]) -> dict[str, uuid.UUID]:
    """`subject_of` for many ids at once (a batch of events): {pairwise id: person}, in a fixed
    number of queries; ids that name nobody for this client are absent."""
    found = dict(
        PairwiseId.objects.filter(client=client, pairwise__in=set(pairwise_ids)).values_list("pairwise", "subject_id")
    )
    survivors = profile_survivors(subject_ids=found.values())
    return {pairwise: survivors[subject] for pairwise, subject in found.items()}


def pairwise_known(*, client: PartnerClient, subject_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The ids already shown to `client` for these people (none is made): whom it knows."""
    rows = PairwiseId.objects.filter(client=client, subject_id__in=list(subject_ids))
    return dict(rows.values_list("subject_id", "pairwise"))
