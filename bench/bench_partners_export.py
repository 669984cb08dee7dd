"""Audience export (issue 15): 100,000 seeded people (BENCH_EXPORT_PEOPLE), all in the segment,
exported with 10 fields as CSV through the gate (consent filter at export time, one audit entry
per batch naming its people, the page's log entry), against reading the same 10 fields of the
same people in plaintext through the ORM (by id, a page of ids at a time, as the profiles
bench and the issue's reference figures read them; a read by the segment's condition, a scan
of the plaintext table, is faster, and the ratio against it nearer 4x). Five
alternating runs; the target is on the median ratio, since single runs of the plaintext read
swing widely."""

import os
import statistics
import time

from django.conf import settings

from bench.bench_profiles import FIELDS, PURPOSE, PlainProfile, _population
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
PEOPLE = int(os.environ.get("BENCH_EXPORT_PEOPLE", "100000"))


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
    people = _population(PEOPLE)
    segment = _segment()
    started = time.perf_counter()
    segment_compute(segment_id=segment.pk, run=segment.run)
    computed = time.perf_counter() - started
    segment.refresh_from_db()
    assert segment.count == PEOPLE, segment.count

    def export() -> int:
        """Every page, as a client pages through them with the cursor."""
        size, members, cursor = 0, 0, None
        while True:
            page = audience_export_plan(
                client=segment.client, segment=segment, fields=FIELDS, format="csv", cursor=cursor
            )
            size += sum(len(chunk) for chunk in audience_export_stream(page=page))
            members += len(page.members)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert members == PEOPLE
        return size

    def plain() -> None:
        """The same people's rows by id, a page of ids at a time, as the export reads them."""
        found: dict[object, PlainProfile] = {}
        for start in range(0, PEOPLE, settings.PARTNERS_EXPORT_PAGE):
            ids = people[start : start + settings.PARTNERS_EXPORT_PAGE]
            found.update((row.id, row) for row in PlainProfile._default_manager.filter(id__in=ids).only("id", *FIELDS))
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
        Figure(f"segment computed inside the vault, {PEOPLE:,} people", computed * 1000, "ms"),
        Figure(f"audience export, {PEOPLE:,} x 10 fields, CSV, median", statistics.median(export_times) * 1000, "ms"),
        Figure(f"plaintext ORM read, same {PEOPLE:,} x 10, median", statistics.median(plain_times) * 1000, "ms"),
        Figure("export / plaintext ORM, median of 5 ratios", statistics.median(ratios), "x", at_most=3.0),
        Figure("export / plaintext ORM, best of 5 ratios", min(ratios), "x"),
        Figure("export / plaintext ORM, worst of 5 ratios", max(ratios), "x"),
    ]
