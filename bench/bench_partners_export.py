"""Audience export (issue 15): a segment's 10,000 members with 10 fields, exported as CSV through
the gate (consent filter at export time, one audit entry per batch naming its people, the page's
log entry), against reading the same 10 fields of the same people in plaintext through the ORM. Five alternating runs;
the target is on the median ratio, since single runs of the plaintext read swing widely."""

import os
import statistics
import time

from django.conf import settings

from bench.bench_profiles import FIELDS, PEOPLE, PURPOSE, PlainProfile, _population
from bench.harness import Figure
from partners.models import Segment
from partners.services import (
    audience_export_plan,
    audience_export_stream,
    partner_client_create,
    segment_compute,
    segment_create,
)
from profiles.gate import Actor

RUNS = 5


def _segment() -> Segment:
    client = partner_client_create(
        slug="bench-mailer",
        name="Bench mailer",
        actor=Actor.system("bench"),
        purposes=[PURPOSE],
        fields=FIELDS,
        rate_limit="100000/s",
    )
    settings.PARTNERS_EXPORT_WORKERS = int(os.environ.get("PARTNERS_EXPORT_WORKERS", "2"))
    settings.CELERY_TASK_ALWAYS_EAGER = False  # computed below, timed, instead of on commit
    segment = segment_create(
        client=client,
        name="Everyone in NL",
        purpose=PURPOSE,
        definition={"all": [{"field": "country", "op": "eq", "value": "NL"}]},
    )
    return segment


def bench_audience_export() -> list[Figure]:
    people = _population()
    segment = _segment()
    started = time.perf_counter()
    segment_compute(segment_id=segment.pk, run=segment.run)
    computed = time.perf_counter() - started
    segment.refresh_from_db()
    assert segment.count == PEOPLE, segment.count

    def export() -> int:
        page = audience_export_plan(client=segment.client, segment=segment, fields=FIELDS, format="csv")
        size = sum(len(chunk) for chunk in audience_export_stream(page=page))
        assert len(page.members) == PEOPLE
        return size

    def plain() -> None:
        found = {row.id: row for row in PlainProfile._default_manager.filter(id__in=people).only("id", *FIELDS)}
        assert len(found) == PEOPLE

    export()  # warm: pseudonyms, caches
    plain()
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(export)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
        profiler = cProfile.Profile()
        profiler.runcall(plain)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(8)
    ratios, export_times, plain_times = [], [], []
    for _ in range(RUNS):
        start = time.perf_counter()
        export()
        export_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        plain()
        plain_times.append(time.perf_counter() - start)
        ratios.append(export_times[-1] / plain_times[-1])
    return [
        Figure("segment computed inside the vault, 10,000 people", computed * 1000, "ms"),
        Figure("audience export, 10,000 x 10 fields, CSV, median", statistics.median(export_times) * 1000, "ms"),
        Figure("plaintext ORM read, same 10,000 x 10, median", statistics.median(plain_times) * 1000, "ms"),
        Figure("export / plaintext ORM, median of 5 ratios", statistics.median(ratios), "x", at_most=3.0),
        Figure("export / plaintext ORM, best of 5 ratios", min(ratios), "x"),
        Figure("export / plaintext ORM, worst of 5 ratios", max(ratios), "x"),
    ]
