"""The public page as HTML: index.html, incidents/N.html and history.html.

Pure functions of a `Snapshot`. Python shapes the values (which day an incident
stands under, what a bar's tooltip says); the Jinja2 templates in
`renderers/templates` only lay them out. Everything is escaped unless it is
`Markup` made here or by `render_markdown`. The page needs no JavaScript, loads
nothing from anywhere but itself (one stylesheet, `style.<hash>.css`, named by
its content so that it can be cached for good) and links relatively, so it
works from any prefix.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from renderers.charts import render_chart_svg, unavailable_chart
from renderers.markdown import render_markdown
from renderers.memo import ByIdentity
from renderers.timefmt import (
    day_label,
    day_tag,
    days_back,
    local_day,
    month_label,
    short_day_label,
    time_tag,
    window_tag,
)
from storage.rules import (
    COMPONENT_LABELS,
    SEVERITY,
    STATUS_LABELS,
    ComponentStatus,
    Kind,
)
from storage.snapshot import (
    ComponentView,
    GroupView,
    IncidentRef,
    IncidentView,
    MetricView,
    Snapshot,
    UpdateView,
    UptimeDay,
)

log = logging.getLogger(__name__)

PAST_DAYS = 15

# One-letter classes keep 90 bars a component small: the CSS gives them colour.
STATUS_CLASS: dict[str, str] = {
    ComponentStatus.OPERATIONAL: "o",
    ComponentStatus.DEGRADED: "d",
    ComponentStatus.PARTIAL: "p",
    ComponentStatus.MAJOR: "m",
    ComponentStatus.MAINTENANCE: "u",
}
NO_DATA_CLASS = "n"
OPERATIONAL_CLASS = STATUS_CLASS[ComponentStatus.OPERATIONAL]

IMPACT_LABELS: dict[str, str] = {
    "none": "No impact",
    "minor": "Minor",
    "major": "Major",
    "critical": "Critical",
    "maintenance": "Maintenance",
}

CHART_VIEWS: tuple[tuple[str, str, str], ...] = (
    ("day", "Day", "last 24 hours"),
    ("week", "Week", "last 7 days"),
    ("month", "Month", "last 30 days"),
)

# The favicon is a dot in the banner's colour (an incident page's: the incident's).
FAVICON: dict[str, str] = {
    "none": "147a3b",
    "minor": "d99a00",
    "major": "e0701f",
    "critical": "c2271f",
    "maintenance": "1d5fb8",
}

# ---------------------------------------------------------------- view values


@dataclass(frozen=True, slots=True)
class Bar:
    """One day of an uptime strip, as its tooltip tells it."""

    cls: str
    day: date
    lines: tuple[str, ...]  # empty: nothing beyond "No downtime recorded" / "No data"
    incidents: tuple[IncidentRef, ...]

    @property
    def label(self) -> str:
        return _day_label(self.day)


@dataclass(frozen=True, slots=True)
class Strip:
    """A component's (or a group's) 90 days of bars and the percentage under them."""

    label: str
    bars: tuple[Bar, ...]
    uptime: str


@dataclass(frozen=True, slots=True)
class Row:
    """A component as the page lists it."""

    code: str
    name: str
    description: str | None
    status: str
    strip: Strip | None


@dataclass(frozen=True, slots=True)
class GroupRow:
    code: str
    name: str
    status: str
    open: bool
    strip: Strip | None
    members: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class PastDay:
    day: date
    today: bool
    items: tuple[IncidentView, ...]


@dataclass(frozen=True, slots=True)
class Month:
    label: str
    items: tuple[IncidentView, ...]


# ---------------------------------------------------------------- formatting


def component_label(status: str) -> str:
    """'partial_outage' → 'Partial Outage'."""
    try:
        return COMPONENT_LABELS[ComponentStatus(status)]
    except ValueError:
        return status.replace("_", " ").title()


def status_label(status: str) -> str:
    """'in_progress' → 'In progress'."""
    return STATUS_LABELS.get(status, status.replace("_", " ").capitalize())


def uptime_text(uptime: float | None) -> str:
    """'99.99 % uptime', never rounded up to 100 while anything was down."""
    if uptime is None:
        return "No data"
    if uptime >= 1:
        return "100.0 % uptime"
    hundredths = int(uptime * 10_000)  # floor: 99.996 % shows as 99.99 %
    return f"{hundredths // 100}.{hundredths % 100:02d} % uptime"


def minutes_text(minutes: int) -> str:
    """'45 min', '2 h 5 min', '3 h'."""
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


_FIRST_P = re.compile(r"^\s*<p>")


def update_html(update: UpdateView) -> Markup:
    """'<strong>Status</strong> - body' with the status inside the body's first paragraph."""
    lead = Markup("<strong>{}</strong> - ").format(status_label(update.status))
    body = render_markdown(update.body)
    match = _FIRST_P.match(body)
    if match:
        return Markup("<p>") + lead + Markup(body[match.end() :])
    return Markup("<p>") + lead.rstrip(" -") + Markup("</p>") + body


_day_label = lru_cache(maxsize=4096)(day_label)
_short_day_label = lru_cache(maxsize=512)(short_day_label)

# What an incremental publish need not format again: the snapshot cache hands out the
# same objects for unchanged components, incidents and charts (renderers/memo.py).
_STRIPS: ByIdentity[Strip | None] = ByIdentity(1024)
_STRIP_HTML: ByIdentity[Markup] = ByIdentity(1024)
_HISTORY_LINE: ByIdentity[Markup] = ByIdentity(32_768)
_HISTORY_MONTH: ByIdentity[Markup] = ByIdentity(1024)
_CHARTS: ByIdentity[Markup] = ByIdentity(256)


# ---------------------------------------------------------------- hot loops
#
# A big page has thousands of bars and history lines; these two build their
# markup with f-strings (every outside value through `escape`), several times
# faster than a template loop. History lines are cached by everything they show,
# so re-rendering the history after one change formats one line.


def strip_html(strip: Strip, root: str) -> Markup:
    """A strip of uptime bars: an `<li>` per day, its tooltip inside.

    Ninety a component make this most of index.html, so each is short: an
    operational day has no class (the CSS colours a bar green unless told
    otherwise) and no `</li>` (HTML closes it at the next `<li>`); a day of the
    current year is 'Mar 13', as dates near today usually are (the strip's
    accessible name states its range with the years). Only a day
    with something to say (downtime, degradation, maintenance, an incident) is a
    tab stop (`tabindex=0`, its detail in a `<div>`): a plain day's tooltip,
    shown on hover, is its date and what its colour already says, and the
    strip's accessible name sums those days up ("no downtime recorded on 85
    days"), so a keyboard or screen-reader user reaches every day that tells
    them something in a few tab presses instead of 90 a component.
    """
    return _STRIP_HTML.get((strip,), (root,), lambda: _strip_html(strip, root))


def _strip_html(strip: Strip, root: str) -> Markup:
    parts = [f'<ol class="bars" aria-label="{escape(strip.label)}">']
    this_year = strip.bars[-1].day.year if strip.bars else None
    for b in strip.bars:
        cls = "" if b.cls == OPERATIONAL_CLASS else f" class={b.cls}"
        label = _short_day_label(b.day) if b.day.year == this_year else b.label
        if b.lines or b.incidents:
            lines = "".join(f"<p>{escape(line)}</p>" for line in b.lines)
            refs = "".join(
                f'<p><a class="i-{escape(r.impact)}" href="{root}incidents/{r.number}.html">'
                f"{escape(r.title)}</a></p>"
                for r in b.incidents
            )
            parts.append(f"<li{cls} tabindex=0><div>{label}{lines}{refs}</div>")
        else:
            parts.append(f"<li{cls}><i>{label}</i>")
    parts.append("</ol>")
    days = len(strip.bars)
    parts.append(
        f'<p class="ux"><span class="d90">{days} days ago</span>'
        f'<span class="d30">30 days ago</span><span class="pc">{strip.uptime}</span>'
        "<span>Today</span></p>"
    )
    return Markup("".join(parts))


def updates_html(updates: tuple[UpdateView, ...], tz: tzinfo) -> Markup:
    """An incident's updates as the page lists them: status and message, then when.

    Cached by everything it shows: the past incidents on index.html are the same
    from one publish to the next, and only a changed incident is formatted again.
    """
    return _updates_html(tuple(updates), tz)


@lru_cache(maxsize=4096)
def _updates_html(updates: tuple[UpdateView, ...], tz: tzinfo) -> Markup:
    parts = ['<ol class="ups">']
    for u in updates:
        parts.append(
            f'<li class="up">\n<div class="md">{update_html(u)}</div>\n'
            f'<p class="when">{time_tag(u.display_at, tz)}</p>\n</li>'
        )
    parts.append("</ol>")
    return Markup("\n".join(parts))


def timeline_html(updates: tuple[UpdateView, ...], tz: tzinfo) -> Markup:
    """An incident page's updates, newest first: status, message, what changed, when.

    A loop of f-strings rather than a template's: a full render formats 10,000 of
    them, and every outside value goes through `escape` or `render_markdown`.
    """
    parts = ['<ol class="timeline">']
    for u in updates:
        parts.append(
            f'<li>\n<h3 class="ust">{escape(status_label(u.status))}</h3>\n<div class="ub">\n'
            f'<div class="md">{render_markdown(u.body)}</div>'
        )
        if u.changes:
            changes = "".join(
                f"<li>{escape(ch.name)}: {escape(component_label(ch.old_status))} → "
                f"{escape(component_label(ch.new_status))}</li>"
                for ch in u.changes
            )
            parts.append(f'<ul class="chg">\n{changes}</ul>')
        parts.append(f'<p class="when">Posted {time_tag(u.display_at, tz)}</p>\n</div>\n</li>')
    parts.append("</ol>")
    return Markup("\n".join(parts))


def history_lines(items: Iterable[IncidentView], tz: tzinfo) -> Markup:
    """The lines of one month of history.html, each on its own line.

    Remembered by the identity of the month's items: after one change, every
    other month of a long history is the same objects, and is not joined again.
    """
    shown = tuple(items)
    return _HISTORY_MONTH.get(
        shown, (tz,), lambda: Markup("\n".join(history_line(i, tz) for i in shown))
    )


def history_line(item: IncidentView, tz: tzinfo) -> Markup:
    """One line of history.html: title link, status, when."""
    return _HISTORY_LINE.get((item,), (tz,), lambda: _history_line_of(item, tz))


def _history_line_of(item: IncidentView, tz: tzinfo) -> Markup:
    return _history_line(
        item.number,
        item.title,
        item.impact,
        item.status,
        item.closed,
        item.started_at,
        item.resolved_at,
        item.last_update_at,
        item.scheduled_for,
        item.scheduled_until,
        tz,
    )


@lru_cache(maxsize=8192)
def _history_line(
    number: int,
    title: str,
    impact: str,
    status: str,
    closed: bool,
    started_at: datetime,
    resolved_at: datetime | None,
    last_update_at: datetime,
    scheduled_for: datetime | None,
    scheduled_until: datetime | None,
    tz: tzinfo,
) -> Markup:
    if scheduled_for is not None:
        when = window_tag(scheduled_for, scheduled_until, tz)
    elif closed:
        when = window_tag(started_at, resolved_at or last_update_at, tz)
    else:
        when = Markup("Since ") + time_tag(started_at, tz)
    return Markup(
        f'<li><a class="i-{escape(impact)}" href="incidents/{number}.html">{escape(title)}</a> '
        f'<span class="hs">{escape(status_label(status))}</span> '
        f'<span class="hw">{when}</span></li>'
    )


# ---------------------------------------------------------------- shaping


def _bar(day: UptimeDay) -> Bar:
    if day.uptime is None or day.worst is None:
        return Bar(NO_DATA_CLASS, day.day, (), ())
    lines = _downtime_lines(day)
    cls = STATUS_CLASS.get(day.worst, NO_DATA_CLASS)
    if cls == "o" and not day.incidents and not lines:
        return Bar(cls, day.day, (), ())
    return Bar(cls, day.day, lines or (_quiet_line(day.worst),), day.incidents)


def _downtime_lines(day: UptimeDay) -> tuple[str, ...]:
    lines = []
    if day.major_minutes:
        lines.append(f"Major outage {minutes_text(day.major_minutes)}")
    if day.partial_minutes:
        lines.append(f"Partial outage {minutes_text(day.partial_minutes)}")
    return tuple(lines)


def _quiet_line(worst: str) -> str:
    """What a day without outage minutes says."""
    if worst == ComponentStatus.DEGRADED:
        return "Degraded performance, no downtime"
    if worst == ComponentStatus.MAINTENANCE:
        return "Under maintenance, no downtime"
    if worst in (ComponentStatus.PARTIAL, ComponentStatus.MAJOR):
        return f"{component_label(worst)} under a minute"
    return "No downtime recorded"


def _strip(component: ComponentView) -> Strip | None:
    return _STRIPS.get(
        (component.uptime_days,),
        (component.name, uptime_text(component.uptime)),  # as shown: it creeps with the clock
        lambda: _strip_of(component),
    )


def _strip_of(component: ComponentView) -> Strip | None:
    if not component.uptime_days:
        return None
    bars = tuple(_bar(d) for d in component.uptime_days)
    uptime = uptime_text(component.uptime)
    return Strip(label=strip_label(component.name, bars, uptime), bars=bars, uptime=uptime)


def _group_strip(group: GroupView, members: Sequence[ComponentView]) -> Strip | None:
    """The group's own bars: each day at its worst member, the mean of their uptimes."""
    return _STRIPS.get(
        tuple(m.uptime_days for m in members),
        (group.name, *(m.name for m in members), uptime_text(_mean_uptime(members))),
        lambda: _group_strip_of(group, members),
    )


def _group_strip_of(group: GroupView, members: Sequence[ComponentView]) -> Strip | None:
    shown = [m for m in members if m.uptime_days]
    if not shown:
        return None
    length = min(len(m.uptime_days) for m in shown)
    bars: list[Bar] = []
    for k in range(length):
        days = [(m, m.uptime_days[len(m.uptime_days) - length + k]) for m in shown]
        counted = [(m, d) for m, d in days if d.uptime is not None and d.worst is not None]
        if not counted:
            bars.append(Bar(NO_DATA_CLASS, days[0][1].day, (), ()))
            continue
        worst = max((d.worst for _, d in counted if d.worst), key=_severity)
        lines: list[str] = []
        for m, d in counted:
            lines += [f"{m.name}: {line.lower()}" for line in _downtime_lines(d)]
        refs: dict[int, IncidentRef] = {}
        for _, d in counted:
            for ref in d.incidents:
                refs.setdefault(ref.number, ref)
        cls = STATUS_CLASS.get(worst, NO_DATA_CLASS)
        day = counted[0][1].day
        if cls == "o" and not refs and not lines:
            bars.append(Bar(cls, day, (), ()))
        else:
            bars.append(Bar(cls, day, tuple(lines) or (_quiet_line(worst),), tuple(refs.values())))
    uptime = uptime_text(_mean_uptime(shown))
    return Strip(label=strip_label(group.name, bars, uptime), bars=tuple(bars), uptime=uptime)


def strip_label(name: str, bars: Sequence[Bar], uptime: str) -> str:
    """A strip's accessible name: its range, its uptime, and the days not worth a tab stop.

    'API: 99.99 % uptime over the last 90 days, Mar 13, 2026 to Jun 10, 2026;
    no downtime recorded on 68 days, no data on 20 days'. The days with more to say
    are the strip's tab stops, each with its own detail.
    """
    if not bars:
        return f"{name}: no uptime data"
    head = f"{uptime} over" if uptime != "No data" else "no data for"
    plain = sum(1 for b in bars if b.cls == OPERATIONAL_CLASS and not (b.lines or b.incidents))
    empty = sum(1 for b in bars if b.cls == NO_DATA_CLASS and not (b.lines or b.incidents))
    quiet = [f"no downtime recorded on {plain} day{'s' * (plain != 1)}"] if plain else []
    quiet += [f"no data on {empty} day{'s' * (empty != 1)}"] if empty else []
    summary = f"{name}: {head} the last {len(bars)} days, {bars[0].label} to {bars[-1].label}"
    return "; ".join([summary, ", ".join(quiet)]) if quiet else summary


def _mean_uptime(members: Sequence[ComponentView]) -> float | None:
    uptimes = [m.uptime for m in members if m.uptime_days and m.uptime is not None]
    return sum(uptimes) / len(uptimes) if uptimes else None


def _severity(status: str) -> int:
    try:
        return SEVERITY[ComponentStatus(status)]
    except ValueError:
        return -1


def _visible(component: ComponentView) -> bool:
    return not (component.only_show_if_degraded and component.status == "operational")


def _row(component: ComponentView) -> Row:
    return Row(
        code=component.code,
        name=component.name,
        description=component.description or None,
        status=component.status,
        strip=_strip(component),
    )


def layout_rows(snapshot: Snapshot) -> list[Row | GroupRow]:
    """The components section in page order, hidden components left out."""
    rows: list[Row | GroupRow] = []
    for item in snapshot.layout:
        if isinstance(item, GroupView):
            members = [c for c in item.components if _visible(c)]
            if not members:
                continue
            rows.append(
                GroupRow(
                    code=item.code,
                    name=item.name,
                    status=item.status,
                    open=any(c.status != "operational" for c in members),
                    strip=_group_strip(item, members),
                    members=tuple(_row(c) for c in members),
                )
            )
        elif _visible(item):
            rows.append(_row(item))
    return rows


def past_days(snapshot: Snapshot, days: int = PAST_DAYS) -> list[PastDay]:
    """The last `days` local days, today first, each with what last changed on it."""
    tz = snapshot.tz
    today = local_day(snapshot.generated_at, tz)
    first = today - timedelta(days=days - 1)
    # Most of a long history ended before these days: one comparison, made in UTC (a
    # day early, whatever the zone's offset), leaves it out before any zone arithmetic.
    cutoff = snapshot.generated_at.astimezone(UTC) - timedelta(days=days + 1)
    by_day: dict[date, list[IncidentView]] = {}
    for item in snapshot.incidents + snapshot.maintenances:
        at = item.last_update_at
        if at < cutoff:
            continue
        day = local_day(at, tz)
        if first <= day <= today:
            by_day.setdefault(day, []).append(item)
    out = []
    for day in days_back(today, days):
        items = sorted(by_day.get(day, ()), key=lambda i: (i.last_update_at, i.number))
        out.append(PastDay(day=day, today=day == today, items=tuple(reversed(items))))
    return out


def started(item: IncidentView) -> datetime:
    """When an incident began, or a maintenance is (was) due to begin."""
    if item.kind == Kind.MAINTENANCE and item.scheduled_for is not None:
        return item.scheduled_for
    return item.started_at


def months(snapshot: Snapshot) -> list[Month]:
    """Every incident and maintenance, newest first, by local month of its start."""
    tz = snapshot.tz
    items = sorted(
        snapshot.incidents + snapshot.maintenances,
        key=lambda i: (started(i), i.number),
        reverse=True,
    )
    out: list[Month] = []
    current: tuple[int, int] | None = None
    bucket: list[IncidentView] = []
    for item in items:
        local = started(item).astimezone(tz)
        month = (local.year, local.month)
        if month != current:
            if current is not None:
                out.append(Month(_month_label(*current), tuple(bucket)))
            current, bucket = month, []
        bucket.append(item)
    if current is not None:
        out.append(Month(_month_label(*current), tuple(bucket)))
    return out


@lru_cache(maxsize=1024)
def _month_label(year: int, month: int) -> str:
    return month_label(date(year, month, 1))


def affected_text(snapshot: Snapshot, item: IncidentView) -> str:
    """'Backend Processing (Imports and Exports, Segment calcluation), API'."""
    groups = {g.code: g.name for g in snapshot.groups}
    order: list[str | None] = []
    names: dict[str | None, list[str]] = {}
    for c in sorted(item.components, key=lambda c: c.position):
        key = c.group_code if c.group_code in groups else None
        if key is None:
            order.append(None)
            names.setdefault(None, []).append(c.name)
            continue
        if key not in names:
            order.append(key)
        names.setdefault(key, []).append(c.name)
    parts: list[str] = []
    loose = iter(names.get(None, []))
    for key in order:
        if key is None:
            parts.append(next(loose))
        else:
            parts.append(f"{groups[key]} ({', '.join(names[key])})")
    return ", ".join(parts)


# ---------------------------------------------------------------- environment


def _minify_css(css: str) -> str:
    """Comments and layout whitespace out; strings kept as written."""
    out: list[str] = []
    for k, part in enumerate(re.split(r"(\"[^\"]*\"|'[^']*')", css)):
        if k % 2:
            out.append(part)
            continue
        part = re.sub(r"/\*.*?\*/", "", part, flags=re.S)
        part = re.sub(r"\s+", " ", part)
        part = re.sub(r"\s*([{};,>])\s*", r"\1", part)
        part = re.sub(r":\s+", ":", part)
        out.append(part.replace(";}", "}"))
    return "".join(out).strip()


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The one Jinja2 environment: autoescape everywhere, undefined names are errors."""
    env = Environment(
        loader=PackageLoader("renderers", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.globals.update(
        component_label=component_label,
        status_label=status_label,
        impact_label=lambda impact: IMPACT_LABELS.get(impact, impact.title()),
        status_class=lambda s: STATUS_CLASS.get(s, NO_DATA_CLASS),
        day_tag=day_tag,
        update_html=update_html,
    )
    env.filters["md"] = render_markdown
    return env


# The sources of the one stylesheet every page links, in cascade order, and how many
# hex digits of its hash its name carries.
STYLE_SOURCES = ("base", "index", "incident", "history", "subscribe")
STYLE_HASH_LENGTH = 10


@dataclass(frozen=True, slots=True)
class Stylesheet:
    """The page's stylesheet: its file name (`style.<hash>.css`) and its minified text."""

    path: str
    text: str


@lru_cache(maxsize=1)
def stylesheet() -> Stylesheet:
    """Every page's CSS in one file named by a hash of its content.

    One file for every kind of page: a visitor downloads it once, and because
    its name changes whenever its content does, it is served as immutable
    (renderers/publish.py's IMMUTABLE) and never asked for again.
    """
    loader = environment().loader
    assert loader is not None
    sources = [loader.get_source(environment(), f"{part}.css")[0] for part in STYLE_SOURCES]
    text = _minify_css("\n".join(sources)) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()[:STYLE_HASH_LENGTH]
    return Stylesheet(path=f"style.{digest}.css", text=text)


def _render(name: str, snapshot: Snapshot, root: str, **values: Any) -> str:
    tz = snapshot.tz
    page = snapshot.page
    context = {
        "css": root + stylesheet().path,
        "style_src": Markup("'self'"),
        "page": page,
        "snapshot": snapshot,
        "root": root,
        "t": lambda at, text=None: time_tag(at, tz, text),
        "window": lambda a, b: window_tag(a, b, tz),
        "affected": lambda item: affected_text(snapshot, item),
        "started": started,
        "history_lines": lambda items: history_lines(items, tz),
        "updates_html": lambda updates: updates_html(updates, tz),
        "timeline_html": lambda updates: timeline_html(updates, tz),
        "strip_html": lambda strip: strip_html(strip, root),
        "favicon": FAVICON.get(snapshot.status.indicator, FAVICON["none"]),
        **values,
    }
    return environment().get_template(name).render(context)


def _charts(metrics: Iterable[MetricView], tz: tzinfo) -> list[dict[str, Any]]:
    out = []
    for n, metric in enumerate(metrics):
        try:
            views = _chart_views(metric, n, tz)
        except (ArithmeticError, ValueError, TypeError) as error:
            # One metric's chart must not keep incidents off the page: it says it is
            # unavailable, the log says why, and the next publish tries it again.
            log.warning("the chart of metric %r could not be drawn: %r", metric.name, error)
            views = [
                {"view": view, "tab": tab, "svg": unavailable_chart(f"{metric.name}, {span}")}
                for view, tab, span in CHART_VIEWS
            ]
        out.append({"metric": metric, "views": views})
    return out


def _chart_views(metric: MetricView, n: int, tz: tzinfo) -> list[dict[str, Any]]:
    return [
        {
            "view": view,
            "tab": tab,
            "svg": _chart_svg(
                metric.series.get(view, ()),
                metric.unit,
                tz,
                f"{metric.name}, {span}",
                f"m{n}{view[0]}",
            ),
        }
        for view, tab, span in CHART_VIEWS
    ]


def _chart_svg(series: Sequence[Any], unit: str, tz: tzinfo, title: str, key: str) -> Markup:
    return _CHARTS.get(
        (series,),
        (unit, tz, title, key),
        lambda: render_chart_svg(
            series, unit=unit, tz=tz, width=600, height=180, title=title, key=key
        ),
    )


# ---------------------------------------------------------------- public API


def render_index(snapshot: Snapshot) -> str:
    """index.html: banner, open incidents, maintenance, components, metrics, past incidents."""
    return _render(
        "index.html",
        snapshot,
        "",
        rows=layout_rows(snapshot),
        incidents=snapshot.unresolved_incidents,
        active_maintenances=snapshot.active_maintenances,
        upcoming_maintenances=snapshot.upcoming_maintenances,
        charts=_charts(snapshot.metrics, snapshot.tz),
        past=past_days(snapshot),
    )


def render_incident(snapshot: Snapshot, incident: IncidentView) -> str:
    """incidents/N.html: one incident or maintenance with every update, newest first."""
    # Its favicon follows the incident, not the banner, so a change elsewhere on
    # the page leaves every incident page's bytes (and publishing) alone.
    colour = "none" if incident.closed else incident.impact
    return _render(
        "incident.html",
        snapshot,
        "../",
        item=incident,
        favicon=FAVICON.get(colour, FAVICON["minor"]),
    )


def render_history(snapshot: Snapshot) -> str:
    """history.html: every incident and maintenance, newest first, by month."""
    return _render("history.html", snapshot, "", months=months(snapshot))


def render_html(snapshot: Snapshot, *, incidents: Collection[int] | None = None) -> dict[str, str]:
    """Relative path → HTML for the index, the history and incident pages (all, or those listed).

    Each links the stylesheet, `stylesheet().path`, a file of the site beside them.
    """
    out = {"index.html": render_index(snapshot), "history.html": render_history(snapshot)}
    wanted = None if incidents is None else frozenset(incidents)
    for item in snapshot.incidents + snapshot.maintenances:
        if wanted is None or item.number in wanted:
            out[f"incidents/{item.number}.html"] = render_incident(snapshot, item)
    return out
