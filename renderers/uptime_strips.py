"""The 90-day uptime strips of index.html: a bar a day with its tooltip, a component's
or a group's, and the strip's accessible name. Pure functions of the snapshot's
`UptimeDay`s, remembered by identity across incremental publishes (renderers/memo.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache, partial

from markupsafe import Markup, escape

from renderers.labels import component_label, minutes_text, uptime_text
from renderers.memo import ByIdentity
from renderers.timefmt import day_label, short_day_label
from storage.rules import SEVERITY, ComponentStatus
from storage.snapshot import ComponentView, GroupView, IncidentRef, UptimeDay

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


_day_label = lru_cache(maxsize=4096)(day_label)
_short_day_label = lru_cache(maxsize=512)(short_day_label)
# What an incremental publish need not shape or format again: the snapshot cache hands
# out the same objects for unchanged components.
_STRIPS: ByIdentity[Strip | None] = ByIdentity(1024)
_STRIP_HTML: ByIdentity[Markup] = ByIdentity(1024)
# A group's bar of one day, by its members' days of that day: 90 a group.
_GROUP_BARS: ByIdentity[Bar] = ByIdentity(16_384)


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


def strip(component: ComponentView) -> Strip | None:
    """A component's strip, or None when it has no uptime days."""
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


def group_strip(group: GroupView, members: Sequence[ComponentView]) -> Strip | None:
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
    names = tuple(m.name for m in shown)
    bars: list[Bar] = []
    for k in range(length):
        days = tuple(m.uptime_days[len(m.uptime_days) - length + k] for m in shown)
        # A member's unchanged days are the same objects from publish to publish: so is
        # the group's bar made of them.
        bars.append(_GROUP_BARS.get(days, names, partial(_group_bar, names, days)))
    uptime = uptime_text(_mean_uptime(shown))
    return Strip(label=strip_label(group.name, bars, uptime), bars=tuple(bars), uptime=uptime)


def _group_bar(names: tuple[str, ...], days: tuple[UptimeDay, ...]) -> Bar:
    """One day of a group's strip: its worst member's colour, every member's downtime."""
    counted = [
        (name, d)
        for name, d in zip(names, days, strict=True)
        if d.uptime is not None and d.worst is not None
    ]
    if not counted:
        return Bar(NO_DATA_CLASS, days[0].day, (), ())
    worst = max((d.worst for _, d in counted if d.worst), key=_severity)
    lines: list[str] = []
    for name, d in counted:
        lines += [f"{name}: {line.lower()}" for line in _downtime_lines(d)]
    refs: dict[int, IncidentRef] = {}
    for _, d in counted:
        for ref in d.incidents:
            refs.setdefault(ref.number, ref)
    cls = STATUS_CLASS.get(worst, NO_DATA_CLASS)
    day = counted[0][1].day
    if cls == "o" and not refs and not lines:
        return Bar(cls, day, (), ())
    return Bar(cls, day, tuple(lines) or (_quiet_line(worst),), tuple(refs.values()))


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
