"""The numbers of the consent analytics dashboard: aggregates only, each small one suppressed.

The database sums the ledger and the rights requests (consent and rights selectors, GROUP BY);
this module replays those sums week by week and applies the minimum count
(`STAFF_ANALYTICS_MIN_COUNT`, k): a count from 1 to k-1 is never shown, and neither is a rate
whose numerator, denominator or remainder is such a count, so no figure describes fewer than k
people.
Zero is shown: it describes no one.

Suppression alone is undone by differencing: a total over cells that are shown exactly, minus
those cells, gives the hidden one, and the change of a rate from one week to the next gives the
change of its counts. So every figure that adds up cells shown elsewhere (a version's totals over
the weekly activity, the requests of a kind, the week's GPC opt-outs over its people) and every
rate is made from counts rounded to the nearest multiple of k (base rounding): what a difference
then tells is a multiple of k, not who moved. Nothing depends on the period the viewer picks
except which weeks are listed: the rights table is over all time.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.utils import timezone

from consent.models import NO_CHOICE_BASES, EventType, LegalBasis, PolicyVersion, Purpose
from consent.selectors import LedgerWeek, consent_gpc_weekly, consent_ledger_weekly, consent_policy_versions
from rights.models import Kind
from rights.selectors import rights_completion_times

WEEK = timedelta(days=7)
AFTER_WEEKS = 4  # a version's effect: the opt-in rate this many weeks after the week it took effect
_GRANTED = frozenset({EventType.GRANT, EventType.RENEW})

OPT_IN_DEFINITION = (
    "Opt-in rate at the end of a week: of the people who had made any choice about the purpose "
    "by then (a grant, a refusal, a withdrawal, or a request awaiting confirmation), the share "
    "whose latest choice was a grant that still counted (a grant given under a version older "
    "than a material change in force needs renewing, and does not count until renewed)."
)


@dataclass(frozen=True)
class Cell:
    """One figure: `value` None when it is suppressed (`under` is then k) or undefined; a str is
    a label (a date, yes/no), shown as is."""

    value: float | str | None
    under: int = 0
    percent: bool = False
    decimals: int = 0
    rounded: bool = False  # a count rounded to a multiple of k: shown "≈50"

    @property
    def suppressed(self) -> bool:
        return self.under > 0

    @property
    def text(self) -> str:
        if self.suppressed:
            return f"<{self.under}"
        if self.value is None:
            return "—"
        if isinstance(self.value, str):
            return self.value
        approx = "≈" if self.rounded and self.value else ""
        return approx + f"{self.value:.{self.decimals}f}" + ("%" if self.percent else "")

    @property
    def csv(self) -> str:
        if self.value is None or isinstance(self.value, str):
            return self.value or ""
        return f"{self.value:.{self.decimals}f}"

    @property
    def number(self) -> float | None:
        """What a chart draws: nothing for a suppressed, undefined or text cell."""
        return None if isinstance(self.value, str) else self.value


@dataclass(frozen=True)
class Guard:
    """The minimum count k, applied to every figure made."""

    k: int

    def count(self, n: int) -> Cell:
        return Cell(None, under=self.k) if 0 < n < self.k else Cell(n)

    def round(self, n: int) -> int:
        """`n` to the nearest multiple of k (a half rounds up)."""
        return (n + self.k // 2) // self.k * self.k

    def total(self, n: int) -> Cell:
        """A count that sums cells shown elsewhere: suppressed when small, else rounded to a
        multiple of k, so that the total minus the cells shown does not give a hidden one."""
        return Cell(None, under=self.k) if 0 < n < self.k else Cell(self.round(n), rounded=True)

    def rate(self, part: int, whole: int) -> Cell:
        """`part` of `whole`, unless either, or the rest (`whole - part`), is a small count: 90%
        of 10 would tell that a single person did not opt in. Made from both counts rounded to a
        multiple of k: from exact ones, a rate's change from one week to the next would give the
        suppressed number of people who moved."""
        if whole == 0:
            return Cell(None)
        if 0 < part < self.k or whole < self.k or 0 < whole - part < self.k:
            return Cell(None, under=self.k)
        return Cell(100 * self.round(part) / self.round(whole), percent=True, decimals=1)

    def days(self, value: float | None, among: int) -> Cell:
        """A time statistic of `among` requests: suppressed when they are fewer than k."""
        if among == 0 or value is None:
            return Cell(None)
        if among < self.k:
            return Cell(None, under=self.k)
        return Cell(value, decimals=1)


@dataclass
class Table:
    """The numbers behind one chart: a row per x category (`labels`), a column per series."""

    slug: str  # its CSV's name (`?csv=<slug>`)
    title: str
    label_column: str
    columns: list[str]
    labels: list[str] = field(default_factory=list)
    rows: list[list[Cell]] = field(default_factory=list)

    def add(self, label: str, cells: list[Cell]) -> None:
        self.labels.append(label)
        self.rows.append(cells)

    @property
    def rows_labelled(self) -> list[tuple[str, list[Cell]]]:
        return list(zip(self.labels, self.rows, strict=True))

    @property
    def has_suppressed(self) -> bool:
        return any(cell.suppressed for row in self.rows for cell in row)


@dataclass(frozen=True)
class Marker:
    """A moment drawn across a time chart (a policy version taking effect), in x units."""

    x: float
    label: str


@dataclass
class Chart:
    slug: str
    title: str
    description: str  # what it shows, for screen readers (the SVG's <desc>)
    x_label: str
    y_label: str
    kind: str  # "line" or "bars"
    table: Table
    series: int = 0  # how many of the table's first columns are drawn (0: all)
    markers: list[Marker] = field(default_factory=list)
    percent: bool = False


@dataclass
class PurposeSection:
    purpose: Purpose
    charts: list[Chart]  # none until someone made a choice about it
    versions: Table


@dataclass
class Dashboard:
    k: int
    weeks: int
    starts: date
    purposes: list[PurposeSection]
    gpc: Chart
    rights: Chart

    def charts(self) -> Iterable[Chart]:
        for section in self.purposes:
            yield from section.charts
        yield self.gpc
        yield self.rights

    def table(self, slug: str) -> Table | None:
        """The table behind the chart (or the versions' table) named `slug`, for its CSV."""
        tables = [chart.table for chart in self.charts()] + [section.versions for section in self.purposes]
        return next((table for table in tables if table.slug == slug), None)


def week_start(moment: datetime) -> date:
    """The Monday of `moment`'s week in the current time zone (as the database's TruncWeek)."""
    local = timezone.localtime(moment).date()
    return local - timedelta(days=local.weekday())


def _week_label(week: date) -> str:
    return week.isoformat()


def _at(week: date) -> datetime:
    return timezone.make_aware(datetime(week.year, week.month, week.day))


@dataclass
class _WeekState:
    week: date
    holders: int  # people whose latest choice is a grant that still counts
    chosen: int  # people who made any choice so far
    acts: dict[str, int]  # the week's events by type


def _replay(
    purpose: Purpose, versions: list[PolicyVersion], rows: list[LedgerWeek], first: date, last: date, now: datetime
) -> list[_WeekState]:
    """Week by week from `first` to `last`, who stood where at each week's end: the sums give,
    per week, the moves into a grant (naming a version) and out of one (naming the version the
    previous act named), and the people choosing for the first time."""
    effective = {version.pk: version.effective_from for version in versions}
    material = [version.effective_from for version in versions if version.is_material]
    by_week: dict[date, list[LedgerWeek]] = defaultdict(list)
    for row in rows:
        by_week[week_start(row.week)].append(row)
    holders: dict[int, int] = defaultdict(int)  # version id -> people whose latest act granted under it
    chosen = 0
    states = []
    week = min([first, *by_week]) if by_week else first
    while week <= last:
        acts: dict[str, int] = defaultdict(int)
        for row in by_week.get(week, ()):
            acts[row.event_type] += row.events
            if row.previous_type is None:
                chosen += row.events
            elif row.previous_type in _GRANTED and row.previous_version_id is not None:
                holders[row.previous_version_id] -= row.events
            if row.event_type in _GRANTED:
                holders[row.policy_version_id] += row.events
        end = min(_at(week + WEEK), now)
        since = max((when for when in material if when <= end), default=None)
        if purpose.legal_basis != LegalBasis.CONSENT:
            since = None  # renewal after a material change is asked of consent only
        counted = sum(n for version, n in holders.items() if since is None or effective[version] >= since)
        if week >= first:
            states.append(_WeekState(week, counted, chosen, acts))
        week += WEEK
    return states


def _marker(states: list[_WeekState], moment: datetime, label: str) -> Marker | None:
    if not states:
        return None
    offset = (moment - _at(states[0].week)) / WEEK
    return Marker(offset, label) if 0 <= offset < len(states) else None


def _purpose_section(
    purpose: Purpose,
    versions: list[PolicyVersion],
    rows: list[LedgerWeek],
    guard: Guard,
    window: tuple[date, date],
    now: datetime,
) -> PurposeSection:
    first, last = window
    # The whole history, so a version's before/after can be read even outside the window.
    earliest = min([first, *(week_start(v.effective_from) for v in versions if v.effective_from <= now)])
    history = _replay(purpose, versions, rows, earliest, last, now)
    shown = [state for state in history if state.week >= first]
    slug = purpose.slug

    # The rate alone: the running counts behind it would give away, week by week, the small
    # numbers of grants and withdrawals the activity table suppresses (by difference).
    rate = Table(f"optin-{slug}", f"{purpose.name}: opt-in rate", "week", ["opt-in rate (%)"])
    activity = Table(
        f"activity-{slug}",
        f"{purpose.name}: grants and withdrawals per week",
        "week",
        ["grants", "renewals", "withdrawals", "refusals"],
    )
    for state in shown:
        label = _week_label(state.week)
        rate.add(label, [guard.rate(state.holders, state.chosen)])
        activity.add(
            label,
            [
                guard.count(state.acts[EventType.GRANT]),
                guard.count(state.acts[EventType.RENEW]),
                guard.count(state.acts[EventType.WITHDRAW]),
                guard.count(state.acts[EventType.REFUSE]),
            ],
        )

    markers = []
    for version in versions:
        marker = _marker(shown, version.effective_from, version.label + (" (material)" if version.is_material else ""))
        if marker is not None:
            markers.append(marker)

    table = Table(
        f"versions-{slug}",
        f"{purpose.name}: policy versions and their effect",
        "version",
        [
            "takes effect",
            "material",
            "grants (rounded)",
            "renewals (rounded)",
            "withdrawals (rounded)",
            "refusals (rounded)",
            "opt-in rate the week before (%)",
            f"opt-in rate {AFTER_WEEKS} weeks after (%)",
        ],
    )
    acts: dict[tuple[int, str], int] = defaultdict(int)
    for row in rows:
        acts[row.policy_version_id, row.event_type] += row.events
    index = {state.week: i for i, state in enumerate(history)}
    for version in versions:
        took_effect = week_start(version.effective_from)
        before = index.get(took_effect - WEEK)
        after = index.get(took_effect + AFTER_WEEKS * WEEK)
        ended = after is not None and _at(history[after].week + WEEK) <= now
        table.add(
            version.label,
            [
                Cell(timezone.localtime(version.effective_from).strftime("%Y-%m-%d %H:%M")),
                Cell("yes" if version.is_material else "no"),
                # Over the whole ledger, so each sums cells of the weekly activity: rounded.
                guard.total(acts[version.pk, EventType.GRANT]),
                guard.total(acts[version.pk, EventType.RENEW]),
                guard.total(acts[version.pk, EventType.WITHDRAW]),
                guard.total(acts[version.pk, EventType.REFUSE]),
                Cell(None) if before is None else guard.rate(history[before].holders, history[before].chosen),
                Cell(None) if after is None or not ended else guard.rate(history[after].holders, history[after].chosen),
            ],
        )

    if not rows:
        return PurposeSection(purpose=purpose, charts=[], versions=table)
    charts = [
        Chart(
            slug=rate.slug,
            title=rate.title,
            description=(
                f"Line chart of the weekly opt-in rate for {purpose.name} over {len(shown)} weeks"
                f"{', with the dates policy versions took effect' if markers else ''}. "
                "The table below gives every figure."
            ),
            x_label="Week starting (Monday)",
            y_label="Opt-in rate (%)",
            kind="line",
            table=rate,
            markers=markers,
            percent=True,
        ),
        Chart(
            slug=activity.slug,
            title=activity.title,
            description=(
                f"Bar chart of grants, renewals, withdrawals and refusals of {purpose.name} per week "
                f"over {len(shown)} weeks. The table below gives every figure."
            ),
            x_label="Week starting (Monday)",
            y_label="People (choices recorded)",
            kind="bars",
            table=activity,
            markers=markers,
        ),
    ]
    return PurposeSection(purpose=purpose, charts=charts, versions=table)


def _gpc_chart(guard: Guard, window: tuple[date, date]) -> Chart:
    first, last = window
    found = {week_start(row.week): row for row in consent_gpc_weekly(since=_at(first))}
    table = Table("gpc", "Global Privacy Control opt-outs recorded per week", "week", ["people", "opt-outs (rounded)"])
    week = first
    while week <= last:
        row = found.get(week)
        # The opt-outs count each of the week's people once per purpose: exact, their excess over
        # the people shown would tell how few were opted out of more than one.
        table.add(_week_label(week), [guard.count(row.people if row else 0), guard.total(row.events if row else 0)])
        week += WEEK
    return Chart(
        slug="gpc",
        title=table.title,
        description=(
            "Bar chart of the people whose browser's Global Privacy Control signal opted them out of "
            "selling or sharing each week, and of the opt-outs recorded (one per purpose). "
            "The table below gives every figure."
        ),
        x_label="Week starting (Monday)",
        y_label="People / opt-outs",
        kind="bars",
        table=table,
    )


def _rights_chart(guard: Guard) -> Chart:
    """Over all time, whatever period is shown: counted since a date the viewer picks, two
    periods a week apart would differ by that week's few requests (and move the median and the
    90th percentile one request at a time). The counts are rounded: received minus completed
    would tell how few are still open."""
    table = Table(
        "rights",
        "Data-subject requests by kind, all time: time to completion",
        "kind",
        ["median days", "90th percentile days", "received (rounded)", "completed (rounded)"],
    )
    labels = dict(Kind.choices)
    for times in rights_completion_times():
        table.add(
            labels[times.kind].split(" (")[0],
            [
                guard.days(times.days.get(50), times.completed),
                guard.days(times.days.get(90), times.completed),
                guard.total(times.received),
                guard.total(times.completed),
            ],
        )
    return Chart(
        slug="rights",
        title=table.title,
        description=(
            "Bar chart of the median and 90th percentile of days from receipt to completion of the "
            "data-subject requests received since the service began, by kind. The table below gives every "
            "figure, with the number of requests received and completed."
        ),
        x_label="Kind of request",
        y_label="Days to completion",
        kind="bars",
        table=table,
        series=2,
    )


def consent_dashboard_build(*, weeks: int, k: int, now: datetime | None = None) -> Dashboard:
    """Every figure of the dashboard for the `weeks` weeks ending with the current one. Four
    aggregate queries (ledger, versions, GPC, rights, plus one for the rights' percentiles)."""
    now = now or timezone.now()
    guard = Guard(k)
    last = week_start(now)
    window = (last - (weeks - 1) * WEEK, last)
    versions: dict[int, list[PolicyVersion]] = defaultdict(list)
    for version in consent_policy_versions():
        versions[version.purpose_id].append(version)
    rows: dict[int, list[LedgerWeek]] = defaultdict(list)
    for row in consent_ledger_weekly():
        rows[row.purpose_id].append(row)
    sections = [
        _purpose_section(purpose, versions[purpose.pk], rows[purpose.pk], guard, window, now)
        for purpose in Purpose.objects.exclude(legal_basis__in=NO_CHOICE_BASES)
    ]
    return Dashboard(
        k=k,
        weeks=weeks,
        starts=window[0],
        purposes=sections,
        gpc=_gpc_chart(guard, window),
        rights=_rights_chart(guard),
    )
