"""Consent: the hot-path check the access gate makes before every use of data, the bulk check a
segment job makes over 10,000 subjects, and what recording one choice costs (issue "Consent")."""

import itertools
import statistics
import uuid

from django.utils import timezone

from bench.harness import Figure, latency_figures, time_each
from consent.models import ConsentState, ConsentStatus, LegalBasis, Method, Purpose
from consent.selectors import consent_granted_subjects, consent_is_granted
from consent.services import consent_grant, policy_version_publish

SUBJECTS = 10_000
PURPOSE = "bench-newsletter"


def _population() -> tuple[list[uuid.UUID], int]:
    """10,000 subjects: 40% granted under the version in force, 20% granted before a material
    change (no longer counting), 20% withdrawn, 20% never asked. Projection rows are written
    directly: only the reads are measured here. Returns the subjects and how many count."""
    Purpose.objects.create(
        slug=PURPOSE,
        name="Bench newsletter",
        description="Benchmark purpose.",
        legal_basis=LegalBasis.CONSENT,
        dpv_term="dpv:DirectMarketing",
        data_use="marketing.communications.email",
    )
    old = policy_version_publish(purpose=PURPOSE, label="v1", text="First text.")
    current = policy_version_publish(purpose=PURPOSE, label="v2", text="Material change.", is_material=True)
    subjects = [uuid.uuid4() for _ in range(SUBJECTS)]
    now = timezone.now()
    kinds = [
        (ConsentStatus.GRANTED, current),
        (ConsentStatus.GRANTED, current),
        (ConsentStatus.GRANTED, old),
        (ConsentStatus.WITHDRAWN, current),
        None,
    ]
    rows = [
        ConsentState(
            subject_id=subject,
            purpose_id=current.purpose_id,
            status=kind[0],
            policy_version=kind[1],
            last_seq=1,
            changed_at=now,
        )
        for n, subject in enumerate(subjects)
        if (kind := kinds[n % len(kinds)]) is not None
    ]
    ConsentState.objects.bulk_create(rows, batch_size=5000)
    return subjects, sum(1 for n in range(SUBJECTS) if n % len(kinds) in (0, 1))


def bench_consent_checks(calls: int = 3000, bulk_repeats: int = 30) -> list[Figure]:
    subjects, counting = _population()
    # The ids are random, so walking them in order probes the index at random places.
    walk = itertools.cycle(subjects)

    def one() -> None:
        consent_is_granted(subject_id=next(walk), purpose=PURPOSE)

    single = time_each(one, repeat=calls)

    found: list[int] = []

    def bulk() -> None:
        found.append(len(consent_granted_subjects(subject_ids=subjects, purpose=PURPOSE)))

    batch = time_each(bulk, repeat=bulk_repeats, warmup=3)
    assert set(found) == {counting}, "the bulk check must count only grants under the material version"
    mean = statistics.fmean(batch)
    ordered = sorted(batch)
    return [
        *latency_figures(f"consent_is_granted ({SUBJECTS:,} subjects)", single),
        Figure(f"consent_granted_subjects({SUBJECTS:,}) p50", ordered[len(ordered) // 2] * 1000, "ms"),
        Figure(f"consent_granted_subjects({SUBJECTS:,}) max", ordered[-1] * 1000, "ms"),
        Figure(f"consent_granted_subjects({SUBJECTS:,}) mean", mean * 1000, "ms"),
        Figure("consent_granted_subjects rate", SUBJECTS / mean, "subjects/s"),
    ]


def bench_consent_grant(grants: int = 500) -> list[Figure]:
    """One choice as a request records it: validation, event, projection row, audit entry."""
    if not Purpose.objects.filter(slug=PURPOSE).exists():
        _population()
    subjects = [uuid.uuid4() for _ in range(grants + 20)]
    pending = iter(subjects)

    def grant() -> None:
        consent_grant(subject_id=next(pending), purpose=PURPOSE, method=Method.WEB_FORM, age=30)

    return latency_figures("consent_grant (new subject each)", time_each(grant, repeat=grants))
