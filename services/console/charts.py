"""Server-side SVG charts: a time axis, one or more lines, event markers and shaded windows.

No script and no inline style (the console's CSP allows neither): colours come from CSS
classes and SVG presentation attributes. Every chart is an `<svg role="img">` with a title
and a description, each line carries `data-points` (its point count) and each marker a
`data-date`, so a reader, a screen reader and a test all see the same facts.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from markupsafe import Markup

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 36

When = date | datetime
DOTS_UP_TO = 120


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[When, float]]


@dataclass(frozen=True)
class Marker:
    at: When
    value: float
    label: str  # the tooltip and the screen-reader text
    kind: str = "anomaly"  # a CSS modifier: event-marker--<kind>


@dataclass(frozen=True)
class Window:
    start: When
    end: When
    label: str
    kind: str = "recent"  # a CSS modifier: trend-window--<kind>


def human(value: float) -> str:
    """1234 -> 1.2K, 5_600_000 -> 5.6M (axis labels)."""
    if not math.isfinite(value):
        return "n/a"
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"


def _seconds(at: When) -> float:
    if isinstance(at, datetime):
        return at.timestamp()
    return datetime(at.year, at.month, at.day, tzinfo=UTC).timestamp()


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


@dataclass(frozen=True)
class _Scale:
    t0: float
    t1: float
    y0: float
    y1: float

    def x(self, at: When) -> float:
        span = self.t1 - self.t0 or 1.0
        return LEFT + (_seconds(at) - self.t0) / span * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        span = self.y1 - self.y0 or 1.0
        return HEIGHT - BOTTOM - (value - self.y0) / span * (HEIGHT - TOP - BOTTOM)


def line_chart(
    chart_id: str,
    title: str,
    description: str,
    series: Sequence[Series],
    *,
    markers: Sequence[Marker] = (),
    windows: Sequence[Window] = (),
    y_min: float | None = 0.0,
    y_max: float | None = None,
    x_range: tuple[When, When] | None = None,
) -> Markup:
    """The chart's SVG. `x_range` fixes the time axis (else: the data's first to last)."""
    times = [_seconds(t) for s in series for t, _ in s.points] + [_seconds(m.at) for m in markers]
    values = [v for s in series for _, v in s.points if math.isfinite(v)]
    if x_range is not None:
        t0, t1 = _seconds(x_range[0]), _seconds(x_range[1])
    elif times:
        t0, t1 = min(times), max(times)
    else:
        t0, t1 = 0.0, 1.0
    low = y_min if y_min is not None else min(values, default=0.0)
    high = y_max if y_max is not None else max(values, default=1.0)
    scale = _Scale(t0, t1 if t1 > t0 else t0 + 86_400, low, high if high > low else low + 1)
    parts = [
        f'<svg class="chart" id="{_esc(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{_esc(chart_id)}-title {_esc(chart_id)}-desc" '
        f'data-series-count="{len(series)}" data-marker-count="{len(markers)}">',
        f'<title id="{_esc(chart_id)}-title">{_esc(title)}</title>',
        f'<desc id="{_esc(chart_id)}-desc">{_esc(description)}</desc>',
    ]
    parts += _windows(windows, scale)
    parts += _axes(scale)
    for index, line in enumerate(series):
        coords = " ".join(
            f"{scale.x(t):.1f},{scale.y(v):.1f}" for t, v in line.points if math.isfinite(v)
        )
        count = sum(1 for _, v in line.points if math.isfinite(v))
        parts.append(
            f'<polyline class="series series-{index}" fill="none" data-name="{_esc(line.name)}" '
            f'data-points="{count}" points="{coords}"><title>{_esc(line.name)}</title></polyline>'
        )
        if count <= DOTS_UP_TO:  # a short history: each analysis as a dot (one is no line)
            parts.append(f'<g class="points points-{index}">')
            parts += [
                f'<circle cx="{scale.x(t):.1f}" cy="{scale.y(v):.1f}" r="3">'
                f"<title>{_esc(line.name)} {_esc(_day(t))}: {_esc(human(v))}</title></circle>"
                for t, v in line.points
                if math.isfinite(v)
            ]
            parts.append("</g>")
    for marker in markers:
        parts.append(
            f'<g class="event-marker event-marker--{_esc(marker.kind)}" '
            f'data-date="{_esc(_day(marker.at))}">'
            f'<circle cx="{scale.x(marker.at):.1f}" cy="{scale.y(marker.value):.1f}" r="5"/>'
            f"<title>{_esc(marker.label)}</title></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _day(at: When) -> str:
    return at.date().isoformat() if isinstance(at, datetime) else at.isoformat()


def _windows(windows: Sequence[Window], scale: _Scale) -> list[str]:
    parts = []
    for window in windows:
        x0, x1 = scale.x(window.start), scale.x(window.end)
        parts.append(
            f'<g class="trend-window trend-window--{_esc(window.kind)}" '
            f'data-start="{_esc(_day(window.start))}" data-end="{_esc(_day(window.end))}">'
            f'<rect x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{HEIGHT - TOP - BOTTOM}"/>'
            f'<text x="{x0 + 4:.1f}" y="{TOP + 12}">{_esc(window.label)}</text>'
            f"<title>{_esc(window.label)}: {_esc(_day(window.start))} to "
            f"{_esc(_day(window.end))}</title></g>"
        )
    return parts


def _axes(scale: _Scale) -> list[str]:
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    parts = [
        f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        value = scale.y0 + fraction * (scale.y1 - scale.y0)
        y = scale.y(value)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_esc(human(value))}</text>"
        )
    for label, at in _time_ticks(scale.t0, scale.t1):
        x = scale.x(at)
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">'
            f"{_esc(label)}</text>"
        )
    return parts


def _time_ticks(t0: float, t1: float) -> list[tuple[str, datetime]]:
    """Month starts for a long axis, days for a short one; at most about 13 labels."""
    start, end = datetime.fromtimestamp(t0, UTC), datetime.fromtimestamp(t1, UTC)
    if (end - start).days > 60:
        ticks = []
        month = datetime(start.year, start.month, 1, tzinfo=UTC)
        while month <= end:
            if month >= start:
                ticks.append((month.strftime("%b %Y" if month.month == 1 else "%b"), month))
            month = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
        return ticks
    step = max(1, (end - start).days // 8)
    day = datetime(start.year, start.month, start.day, tzinfo=UTC)
    ticks = []
    while day <= end:
        if day >= start:
            ticks.append((day.strftime("%d %b"), day))
        day += timedelta(days=step)
    return ticks
