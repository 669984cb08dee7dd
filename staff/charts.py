"""Charts drawn on the server as SVG: no JavaScript and no dependency, so they pass the strict
Content Security Policy (presentation attributes such as fill= are not inline styles), print,
and read the same with scripts off. Each has a <title> and a <desc>; the page puts the table of
its numbers next to it as the full text alternative."""

import math

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from staff.analytics import Chart

WIDTH, HEIGHT = 760, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 40, 56
COLOURS = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1")  # told apart by the legend and the table too
MAX_X_LABELS = 9


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value` (axis top)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def _number(value: float) -> str:
    return f"{value:g}"


def chart_svg(chart: Chart) -> SafeString:
    """The chart as an inline <svg> element, with the id `chart-<slug>`."""
    table = chart.table
    drawn = chart.series or len(table.columns)
    names = table.columns[:drawn]
    values = [[cell.number for cell in row[:drawn]] for row in table.rows]
    present = [v for row in values for v in row if v is not None]
    top = 100.0 if chart.percent else nice_ceiling(max(present, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slots = max(len(table.labels), 1)
    slot = plot_w / slots

    def y(value: float) -> float:
        return TOP + plot_h - plot_h * value / top

    ident = f"chart-{chart.slug}"
    parts = [
        format_html(
            '<svg id="{}" class="chart" viewBox="0 0 {} {}" role="img" aria-labelledby="{}-title {}-desc" '
            'xmlns="http://www.w3.org/2000/svg">',
            ident,
            WIDTH,
            HEIGHT,
            ident,
            ident,
        ),
        format_html(
            '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>', ident, chart.title, ident, chart.description
        ),
    ]
    # Grid and the y axis, five steps.
    for step in range(6):
        value = top * step / 5
        parts.append(
            format_html(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}" stroke="#888" stroke-opacity="0.35" />'
                '<text x="{}" y="{}" text-anchor="end" font-size="11" fill="currentColor">{}</text>',
                LEFT,
                WIDTH - RIGHT,
                f"{y(value):.1f}",
                f"{y(value):.1f}",
                LEFT - 6,
                f"{y(value) + 4:.1f}",
                _number(value) + ("%" if chart.percent else ""),
            )
        )
    # The x axis: a label on every nth slot.
    every = max(1, math.ceil(slots / MAX_X_LABELS))
    for i, label in enumerate(table.labels):
        if i % every == 0:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" text-anchor="middle" font-size="11" fill="currentColor">{}</text>',
                    f"{LEFT + slot * (i + 0.5):.1f}",
                    TOP + plot_h + 16,
                    label,
                )
            )
    parts.append(
        format_html(
            '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="currentColor" />'
            '<text class="axis-label" x="{}" y="{}" text-anchor="middle" font-size="12" fill="currentColor">{}</text>'
            '<text class="axis-label" transform="rotate(-90)" x="{}" y="14" text-anchor="middle" font-size="12" '
            'fill="currentColor">{}</text>',
            LEFT,
            WIDTH - RIGHT,
            TOP + plot_h,
            TOP + plot_h,
            LEFT + plot_w / 2,
            HEIGHT - 10,
            chart.x_label,
            -(TOP + plot_h / 2),
            chart.y_label,
        )
    )
    # Version markers across the plot.
    for marker in chart.markers:
        x = LEFT + slot * marker.x
        parts.append(
            format_html(
                '<g class="marker"><line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#b7791f" stroke-width="2" '
                'stroke-dasharray="5 4" /><text x="{}" y="{}" font-size="11" fill="currentColor">{}</text></g>',
                f"{x:.1f}",
                f"{x:.1f}",
                TOP - 6,
                TOP + plot_h,
                f"{x + 3:.1f}",
                TOP - 8,
                marker.label,
            )
        )
    # The data.
    if chart.kind == "line":
        for s, name in enumerate(names):
            column = [row[s] for row in values]
            runs: list[list[str]] = [[]]
            for i, point in enumerate(column):
                if point is None:  # suppressed: the line breaks rather than guess
                    runs.append([])
                else:
                    runs[-1].append(f"{LEFT + slot * (i + 0.5):.1f},{y(point):.1f}")
            for run in runs:
                if len(run) > 1:
                    parts.append(
                        format_html(
                            '<polyline points="{}" fill="none" stroke="{}" stroke-width="2" />',
                            " ".join(run),
                            COLOURS[s % len(COLOURS)],
                        )
                    )
            for i, point in enumerate(column):
                if point is not None:
                    parts.append(
                        format_html(
                            '<circle class="mark" cx="{}" cy="{}" r="4" fill="{}"><title>{}: {} {}</title></circle>',
                            f"{LEFT + slot * (i + 0.5):.1f}",
                            f"{y(point):.1f}",
                            COLOURS[s % len(COLOURS)],
                            table.labels[i],
                            table.rows[i][s].text,
                            name,
                        )
                    )
    else:
        bar = slot * 0.8 / max(len(names), 1)
        for i, row in enumerate(values):
            for s, height in enumerate(row):
                if not height:  # suppressed (the table says "<k"), or zero: nothing to draw
                    continue
                x = LEFT + slot * (i + 0.1) + bar * s
                parts.append(
                    format_html(
                        '<rect class="mark" x="{}" y="{}" width="{}" height="{}" fill="{}">'
                        "<title>{}: {} {}</title></rect>",
                        f"{x:.1f}",
                        f"{y(height):.1f}",
                        f"{max(bar - 1, 1):.1f}",
                        f"{TOP + plot_h - y(height):.1f}",
                        COLOURS[s % len(COLOURS)],
                        table.labels[i],
                        table.rows[i][s].text,
                        names[s],
                    )
                )
    # Legend, above the plot.
    if len(names) > 1:
        parts.append(
            format_html_join(
                "",
                '<g class="legend"><rect x="{}" y="8" width="12" height="12" fill="{}" />'
                '<text x="{}" y="18" font-size="12" fill="currentColor">{}</text></g>',
                (
                    (LEFT + 150 * s, COLOURS[s % len(COLOURS)], LEFT + 150 * s + 16, name)
                    for s, name in enumerate(names)
                ),
            )
        )
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))  # noqa: S308 (every part escaped by format_html)
