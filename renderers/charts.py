"""Metric charts as inline SVG: no script, no image request, readable at any width.

The outer `<svg>` is as wide as its container and places its gridlines and
labels in percentages and pixels, so text keeps its size on a phone; the line
itself sits in a nested `<svg>` with a fixed viewBox stretched to fit
(`preserveAspectRatio="none"`) and a stroke that does not stretch with it.
The chart is named by its `<title>`, described by its `<desc>`, and followed by
a visually hidden sentence with the minimum, average and maximum.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import pairwise

from markupsafe import Markup, escape

from renderers.timefmt import clock, when
from storage.metrics import MAX_VALUE

Point = tuple[datetime, float]

# The nested plot's coordinate system: integers are precise enough at any width.
_SPAN = 1000
_TOP = 18  # room above the top gridline for its label
_BOTTOM = 24  # room below the plot for the time labels
# Time-axis labels: at most this many, at round local times.
_MAX_TICKS = 6
_HOUR_STEPS = (1, 2, 3, 4, 6, 12)
_DAY_STEPS = (1, 2, 3, 5, 7, 14)
_QUARTER = 900  # seconds: every zone's offset is a multiple of 15 minutes
# A gap wider than this many typical steps breaks the line instead of bridging it.
_GAP_STEPS = 5


def downsample(points: Sequence[Point], limit: int) -> list[Point]:
    """At most `limit` points, oldest first, keeping peaks (largest-triangle-three-buckets)."""
    data = sorted(points, key=lambda p: p[0])
    n = len(data)
    if limit < 3 or n <= limit:
        return data[: max(limit, 0)] if limit < 3 and n > limit else data
    times = [p[0].timestamp() for p in data]
    values = [p[1] for p in data]
    out = [data[0]]
    every = (n - 2) / (limit - 2)
    a = 0
    for i in range(limit - 2):
        start = int(i * every) + 1
        stop = min(int((i + 1) * every) + 1, n - 1)
        nxt_start, nxt_stop = stop, min(int((i + 2) * every) + 1, n)
        span = max(nxt_stop - nxt_start, 1)
        avg_t = sum(times[nxt_start:nxt_stop]) / span if nxt_stop > nxt_start else times[-1]
        avg_v = sum(values[nxt_start:nxt_stop]) / span if nxt_stop > nxt_start else values[-1]
        ta, va = times[a], values[a]
        best, best_area = start, -1.0
        for j in range(start, max(stop, start + 1)):
            area = abs((ta - avg_t) * (values[j] - va) - (ta - times[j]) * (avg_v - va))
            if area > best_area:
                best, best_area = j, area
        out.append(data[best])
        a = best
    out.append(data[-1])
    return out


def nice_range(lo: float, hi: float) -> tuple[float, float]:
    """An axis from `lo` to `hi` widened to round numbers in two equal steps."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0
    if lo >= 0 and hi >= 0:
        lo = 0.0  # quantities like response times read honestly from zero
    hi += (hi - lo) * 0.05  # headroom, so a flat line does not run along the top
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    step = _nice_step((hi - lo) / 2)
    bottom = math.floor(lo / step) * step
    while bottom + 2 * step < hi:
        step = _nice_step(step * 1.01)
        bottom = math.floor(lo / step) * step
    return bottom, bottom + 2 * step


def _nice_step(raw: float) -> float:
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if factor * power >= raw * (1 - 1e-9):
            return factor * power
    return 10 * power


def format_value(value: float, unit: str) -> str:
    """'148 ms', '2.5 s', '99.9%'."""
    whole = abs(value) >= 100 or value == int(value)
    number = f"{value:,.0f}" if whole else f"{value:.3g}"
    if not unit:
        return number
    return f"{number}{unit}" if unit == "%" else f"{number} {unit}"


def render_chart_svg(
    points: Sequence[Point],
    *,
    unit: str,
    tz: tzinfo,
    width: int = 600,
    height: int = 180,
    title: str,
    key: str | None = None,
) -> Markup:
    """An inline SVG line chart with axis labels, <title>/<desc> and a hidden min/avg/max."""
    points = drawable(points)
    ident = (
        key
        or "c"
        + hashlib.blake2s(
            f"{title}|{len(points)}|{points[0][0] if points else ''}".encode(), digest_size=4
        ).hexdigest()
    )
    data = downsample(points, max(3, width // 6))
    plot_h = max(height - _TOP - _BOTTOM, 10)
    rows = (_TOP, _TOP + plot_h / 2, _TOP + plot_h)
    grid = "".join(f'<line x1="0" x2="100%" y1="{y:g}" y2="{y:g}"/>' for y in rows)
    parts = [f'<g class="gr">{grid}</g>']
    if not data:
        desc = "Line chart. No data for this period."
        summary = "No data for this period."
        parts.append(
            f'<text class="nd" x="50%" y="{rows[1] + 4:g}" text-anchor="middle">No data</text>'
        )
    else:
        values = [v for _, v in points]
        lo, hi = nice_range(min(values), max(values))
        first, last = data[0][0], data[-1][0]
        measured = f" in {unit}" if unit else ""
        desc = f"Line chart{measured}, from {clock(first, tz)} to {when(last, tz)}."
        summary = (
            f"{title}: minimum {format_value(min(values), unit)}, "
            f"average {format_value(sum(values) / len(values), unit)}, "
            f"maximum {format_value(max(values), unit)}."
        )
        ticks = zip(rows, (hi, (lo + hi) / 2, lo), strict=True)
        parts.append(
            '<g class="yl">'
            + "".join(
                f'<text x="0" y="{y - 5:g}">{escape(format_value(v, unit))}</text>'
                for y, v in ticks
            )
            + "</g>"
        )
        d = _path(data, lo, hi)
        area = (
            f'<path class="ar" d="{d}L{_SPAN} {_SPAN}L0 {_SPAN}Z" stroke="none"/>'
            if len(data) > 1 and d.count("M") == 1
            else ""
        )
        parts.append(
            f'<svg y="{_TOP}" width="100%" height="{plot_h}" viewBox="0 0 {_SPAN} {_SPAN}" '
            f'preserveAspectRatio="none" overflow="visible">{area}'
            f'<path class="ln" d="{d}" fill="none" stroke="currentColor" '
            f'vector-effect="non-scaling-stroke"/></svg>'
        )
        parts.append(_x_labels(first, last, tz, height))
    return Markup(
        '<div class="chart"><svg xmlns="http://www.w3.org/2000/svg" width="100%" '
        'height="{h}" role="img" aria-labelledby="{i}-t" aria-describedby="{i}-d">'
        '<title id="{i}-t">{title}</title><desc id="{i}-d">{desc}</desc>{body}</svg>'
        '<p class="vh">{summary}</p></div>'
    ).format(
        h=height, i=ident, title=title, desc=desc, body=Markup("".join(parts)), summary=summary
    )


def drawable(points: Sequence[Point]) -> list[Point]:
    """The points a chart can draw: NaN and infinities left out, the rest held to ±MAX_VALUE.

    Storage already keeps such values out of a chart; this keeps the arithmetic
    below (ranges, averages, coordinates) finite whatever a caller passes in.
    """
    return [(at, max(-MAX_VALUE, min(MAX_VALUE, v))) for at, v in points if math.isfinite(v)]


def unavailable_chart(title: str) -> Markup:
    """What stands in for a chart that could not be drawn: its name and that it is missing."""
    return Markup('<div class="chart"><p class="nd">{title}: chart unavailable.</p></div>').format(
        title=title
    )


def _path(data: list[Point], lo: float, hi: float) -> str:
    """Path data in the plot's units, relative steps after each move (shorter text)."""
    span_v = (hi - lo) or 1.0
    if len(data) == 1:  # a lone point: a short level stroke so it shows
        y = round((hi - data[0][1]) / span_v * _SPAN)
        return f"M{_SPAN // 2 - 8} {y}h16"
    t0 = data[0][0].timestamp()
    span_t = (data[-1][0].timestamp() - t0) or 1.0
    times = [p[0].timestamp() for p in data]
    steps = sorted(b - a for a, b in pairwise(times))
    typical = steps[len(steps) // 2]
    out: list[str] = []
    px = py = 0
    previous: float | None = None
    drawing = False  # an `l` is open: further pairs need neither the letter nor a space before "-"
    for t, (_, value) in zip(times, data, strict=True):
        x = round((t - t0) / span_t * _SPAN)
        y = round((hi - value) / span_v * _SPAN)
        if previous is None or (typical > 0 and t - previous > _GAP_STEPS * typical):
            out.append(f"M{x} {y}")
            drawing = False
        else:
            dx, dy = x - px, y - py
            lead = ("" if dx < 0 else " ") if drawing else "l"
            out.append(f"{lead}{dx}{'' if dy < 0 else ' '}{dy}")
            drawing = True
        px, py, previous = x, y, t
    return "".join(out)


def time_ticks(first: datetime, last: datetime, tz: tzinfo) -> list[datetime]:
    """Round local times between `first` and `last` for the time axis: at most six.

    Whole hours (every 1, 2, 3, 4, 6 or 12) for up to two days, local midnights
    (every 1, 2, 3, 5, 7 or 14 days) beyond: walked in real time and read on the
    local clock, so a DST change neither skips nor doubles a label.
    """
    span = (last - first).total_seconds()
    if span <= 0:
        return [first]
    if span <= 2 * 86_400:
        hours = next((h for h in _HOUR_STEPS if span / (h * 3600) <= _MAX_TICKS), 24)
        at = datetime.fromtimestamp(math.ceil(first.timestamp() / _QUARTER) * _QUARTER, UTC)
        ticks = []
        while at <= last:
            local = at.astimezone(tz)
            if local.minute == 0 and local.hour % hours == 0:
                ticks.append(at)
            at += timedelta(seconds=_QUARTER)
    else:
        days = next((d for d in _DAY_STEPS if span / (d * 86_400) <= _MAX_TICKS), 30)
        day = first.astimezone(tz).date()
        ticks = []
        while True:
            midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
            if midnight > last:
                break
            if midnight >= first and day.toordinal() % days == 0:
                ticks.append(midnight)
            day += timedelta(days=1)
    return ticks or [first, last]


def _x_labels(first: datetime, last: datetime, tz: tzinfo, height: int) -> str:
    span = (last - first).total_seconds()
    short = span <= 2 * 86_400
    texts: list[str] = []
    for at in time_ticks(first, last, tz):
        local = at.astimezone(tz)
        label = f"{local:%H:%M}" if short else f"{local:%b} {local.day}"
        pct = 100 * (at - first).total_seconds() / span if span > 0 else 50.0
        anchor = "start" if pct < 4 else "end" if pct > 96 else "middle"
        texts.append(
            f'<text x="{pct:.1f}%" y="{height - 6}" text-anchor="{anchor}">{escape(label)}</text>'
        )
    return '<g class="xl">' + "".join(texts) + "</g>"
