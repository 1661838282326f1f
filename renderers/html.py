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

import contextlib
import hashlib
import logging
import os
import pickle
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from itertools import compress
from operator import is_not
from pathlib import Path
from typing import Any

import jinja2
import jinja2.compiler
from jinja2 import (
    Environment,
    FileSystemBytecodeCache,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)
from jinja2.bccache import Bucket
from markupsafe import Markup, escape

from renderers.charts import render_chart_svg, unavailable_chart
from renderers.labels import component_label, status_label
from renderers.markdown import render_markdown
from renderers.memo import ByIdentity
from renderers.timefmt import (
    day_tag,
    days_back,
    local_day,
    month_label,
    time_tag,
    window_tag,
)
from renderers.uptime_strips import (
    NO_DATA_CLASS,
    STATUS_CLASS,
    Strip,
    group_strip,
    strip_html,
)
from renderers.uptime_strips import strip as strip_of
from storage.rules import (
    Kind,
)
from storage.snapshot import (
    ComponentView,
    GroupView,
    IncidentView,
    MetricView,
    Snapshot,
    UpdateView,
)

log = logging.getLogger(__name__)

PAST_DAYS = 15

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


_FIRST_P = re.compile(r"^\s*<p>")


def update_html(update: UpdateView) -> Markup:
    """'<strong>Status</strong> - body' with the status inside the body's first paragraph."""
    return _update_html(update.status, update.body)


# An incident's card lists every update again after each new one: each is formatted once
# (the cards of index.html show a few hundred at most).
@lru_cache(maxsize=2048)
def _update_html(status: str, body_text: str) -> Markup:
    lead = Markup("<strong>{}</strong> - ").format(status_label(status))
    body = render_markdown(body_text)
    match = _FIRST_P.match(body)
    if match:
        return Markup("<p>") + lead + Markup(body[match.end() :])
    return Markup("<p>") + lead.rstrip(" -") + Markup("</p>") + body


# What an incremental publish need not format again: the snapshot cache hands out the
# same objects for unchanged components, incidents and charts (renderers/memo.py).
_HISTORY_LINE: ByIdentity[Markup] = ByIdentity(32_768)
_HISTORY_MONTH: ByIdentity[Markup] = ByIdentity(1024)
_CHARTS: ByIdentity[Markup] = ByIdentity(256)
# A component's line of index.html (the `component` macro), by its strip (the same object
# while its bars are the same) and what else it shows: after a change, every other
# component's line is the one written before. Fifty macro calls were half of index.html.
_COMPONENT_LINES: ByIdentity[Markup] = ByIdentity(1024)


# ---------------------------------------------------------------- hot loops
#
# A big page has thousands of updates and history lines (and bars: see
# renderers/uptime_strips.py); these build their markup with f-strings (every
# outside value through `escape`), several times faster than a template loop.
# History lines are cached by everything they show, so re-rendering the history
# after one change formats one line.


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


def _visible(component: ComponentView) -> bool:
    return not (component.only_show_if_degraded and component.status == "operational")


def _row(component: ComponentView) -> Row:
    return Row(
        code=component.code,
        name=component.name,
        description=component.description or None,
        status=component.status,
        strip=strip_of(component),
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
                    strip=group_strip(item, members),
                    members=tuple(_row(c) for c in members),
                )
            )
        elif _visible(item):
            rows.append(_row(item))
    return rows


def component_html(macro: Callable[[Row], Markup], row: Row, root: str) -> Markup:
    """A component's line, as `macro` (_macros.html's `component`) writes it; remembered."""
    return _COMPONENT_LINES.get(
        (row.strip,), (row.code, row.name, row.description, row.status, root), lambda: macro(row)
    )


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
    """Every incident and maintenance, newest first, by local month of its start.

    After a publish that changed a few incidents and no incident's start, the
    previous months are patched: the changed views take their predecessors'
    places (found by identity, position by position), and every other month
    stays the same object, so its lines are not joined again (`history_lines`).
    """
    items = snapshot.incidents + snapshot.maintenances
    tz = snapshot.tz
    last = _MONTHS.last
    if last is not None and last[0] == tz and len(last[1]) == len(items):
        patched = _patched_months(last, items)
        if patched is not None:
            return patched
    out = _months(items, tz)
    where = {id(item): (m, k) for m, month in enumerate(out) for k, item in enumerate(month.items)}
    _MONTHS.last = (tz, items, out, where)
    return list(out)


# The months as last shaped: (zone, the items they were shaped from, the months, and
# where each item stands in them by its id). One tuple, replaced whole, so a render in
# another thread sees an old state or a new one.
_MonthsState = tuple[tzinfo, tuple[IncidentView, ...], list[Month], dict[int, tuple[int, int]]]


class _LastMonths:
    last: _MonthsState | None = None


_MONTHS = _LastMonths()
_PATCH_LIMIT = 256  # past this many changed views, shaping afresh is as quick


def _patched_months(last: _MonthsState, items: tuple[IncidentView, ...]) -> list[Month] | None:
    """The last months with these items' changed views in place; None if one moved."""
    tz, before, out, where = last
    changed = list(compress(range(len(items)), map(is_not, before, items)))
    if len(changed) > _PATCH_LIMIT:
        return None
    edits: dict[int, dict[int, IncidentView]] = {}
    for k in changed:
        old, new = before[k], items[k]
        if new.number != old.number or started(new) != started(old):
            return None
        m, at = where[id(old)]
        edits.setdefault(m, {})[at] = new
    fresh = list(out)
    moved = dict(where)
    for m, places in edits.items():
        shown = list(fresh[m].items)
        for at, new in places.items():
            del moved[id(shown[at])]
            shown[at] = new
            moved[id(new)] = (m, at)
        fresh[m] = Month(fresh[m].label, tuple(shown))
    _MONTHS.last = (tz, items, fresh, moved)
    return list(fresh)


def _months(items: tuple[IncidentView, ...], tz: tzinfo) -> list[Month]:
    ordered = sorted(items, key=lambda i: (started(i), i.number), reverse=True)
    out: list[Month] = []
    current: tuple[int, int] | None = None
    bucket: list[IncidentView] = []
    for item in ordered:
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


class TemplateCache(FileSystemBytecodeCache):
    """Jinja's bytecode cache in files, compiling past one it cannot read or write."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError):  # cut short
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):  # a full or read-only disk: compiled next time
            super().dump_bytecode(bucket)


def _template_cache() -> TemplateCache | None:
    try:
        return TemplateCache(pattern=f"__statusbot_{_compiled_by()}_%s.cache")
    except (RuntimeError, OSError):  # no temporary directory of this user's own to use
        return None


def _compiled_by() -> str:
    """What compiled the cached templates besides their sources, which Jinja checks
    itself: Jinja (its compiler's file, as installed) and the environment's options
    (this file). Either changed, the entries have other names: compiled anew."""
    compiler = os.stat(jinja2.compiler.__file__)
    installed = f"{compiler.st_size}:{compiler.st_mtime_ns}:".encode()
    return hashlib.sha256(installed + Path(__file__).read_bytes()).hexdigest()[:16]


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The one Jinja2 environment: autoescape everywhere, undefined names are errors.

    Compiled templates are kept in Jinja's bytecode cache (a directory of this user's
    own under the system's temporary one, keyed by each template's source), as
    Python keeps its modules': compiling them was 60 ms of every `statusbot render`,
    and its forked child compiled the incident page's again. A cache that cannot be
    read or written is compiled past, silently.
    """
    env = Environment(
        loader=PackageLoader("renderers", "templates"),
        bytecode_cache=_template_cache(),
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
        "component_html": lambda macro, row: component_html(macro, row, root),
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
