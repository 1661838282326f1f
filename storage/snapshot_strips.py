"""The 90 bars of each component's uptime strip, kept from build to build.

Part of the snapshot cache (storage/snapshot_cache.py). A component's past
days are computed again only when its status history changed or a new day
began; a bar is made again only where that, or an incident open that day,
moved; and a bar that comes out the same is the very object handed out
before. So an unchanged strip is the same tuple as last time, and the
renderers know it by identity (renderers/memo.py); today's bar is redone
every build, as it grows with the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from storage.snapshot import UPTIME_DAYS, IncidentRef, UptimeDay
from storage.snapshot_rows import ComponentRow, History
from storage.uptime import DayUptime, daily_uptime, uptime_ratio, uptime_sums

# When an incident was open (its end None while it is), and how a bar names it.
Window = tuple[datetime, datetime | None, IncidentRef]

_DAY = timedelta(days=1)


@dataclass(slots=True)
class _Strip:
    """A component's strip as last built: the past days, their sums and their bars."""

    key: tuple[object, ...]  # (history version, today, start date): what the past days rest on
    past: list[DayUptime]
    sums: tuple[float, float]  # uptime_sums over `past`
    windows: tuple[Window, ...] | None = None  # what `bars` were made with
    bars: tuple[UptimeDay, ...] = ()
    # The whole strip as last handed out (`bars` then today's): the same tuple while
    # nothing in it moved.
    days: tuple[UptimeDay, ...] = ()
    days_of: tuple[UptimeDay, ...] | None = None  # the `bars` that `days` begins with


class Strips:
    """Every component's strip, by component id. One caller at a time."""

    def __init__(self) -> None:
        self._strips: dict[int, _Strip] = {}

    def days(
        self,
        c: ComponentRow,
        history: History,
        version: int,
        windows: tuple[Window, ...],
        *,
        now: datetime,
        tz: ZoneInfo,
    ) -> tuple[tuple[UptimeDay, ...], float | None]:
        """The component's 90 bars (oldest first) and the percentage under them.

        `version` changes whenever `history` (its initial state and its changes
        since the window opened) does; `windows` are the incidents open at some
        time in the window that affect it, in the order a bar lists them.
        """
        initial, changes = history
        key = (version, now.astimezone(tz).date(), c.start_date)
        old = self._strips.get(c.id)
        if old is None or old.key != key:
            raw = daily_uptime(
                changes, initial=initial, start_date=c.start_date, tz=tz, now=now, days=UPTIME_DAYS
            )
            past = raw[:-1]
            strip = _Strip(key=key, past=past, sums=uptime_sums(past))
            self._strips[c.id] = strip
            today = raw[-1]
        else:
            strip = old
            (today,) = daily_uptime(
                changes, initial=initial, start_date=c.start_date, tz=tz, now=now, days=1
            )
        if strip.windows != windows:
            before = old.bars if old is not None else ()
            strip.bars = _bars(strip.past, windows, tz, before, same_days=strip is old)
            strip.windows = windows
        (today_refs,) = _refs_by_day([today.day], windows, tz)
        today_bar = _bar(today, today_refs)
        if strip.days_of is not strip.bars or strip.days[-1] != today_bar:
            strip.days = (*strip.bars, today_bar)
            strip.days_of = strip.bars
        return strip.days, uptime_ratio(*uptime_sums([today], *strip.sums))


def _bars(
    past: Sequence[DayUptime],
    windows: tuple[Window, ...],
    tz: ZoneInfo,
    before: tuple[UptimeDay, ...],
    *,
    same_days: bool,
) -> tuple[UptimeDay, ...]:
    """The bars of `past`, each one of `before` (the bars last made for that place) where
    it comes out the same; `before` itself when all do. `same_days`: `past` is the
    list `before` was made from, so only the incidents can have moved."""
    refs = _refs_by_day([d.day for d in past], windows, tz)
    out: list[UptimeDay] = []
    kept = len(before) == len(past)
    for k, (day, incidents) in enumerate(zip(past, refs, strict=True)):
        prev = before[k] if k < len(before) else None
        if prev is not None and same_days and prev.incidents == incidents:
            out.append(prev)
            continue
        bar = _bar(day, incidents)
        if prev is not None and prev == bar:
            bar = prev
        else:
            kept = False
        out.append(bar)
    return before if kept else tuple(out)


def _refs_by_day(
    days: Sequence[date], windows: tuple[Window, ...], tz: ZoneInfo
) -> list[tuple[IncidentRef, ...]]:
    """For each day, the incidents open at some time in it, in the order of `windows`.

    Each window is tested only against the days around its own dates (one day of
    margin for the local midnights), not against all ninety.
    """
    if not days or not windows:
        return [() for _ in days]
    found: list[list[IncidentRef]] = [[] for _ in days]
    index = {d: k for k, d in enumerate(days)}
    first, last = min(days), max(days)
    for opened, closed, ref in windows:
        day = max(opened.astimezone(tz).date() - _DAY, first)
        end = last if closed is None else min(closed.astimezone(tz).date() + _DAY, last)
        while day <= end:
            k = index.get(day)
            if k is not None and _open_during(opened, closed, day, tz):
                found[k].append(ref)
            day += _DAY
    return [tuple(refs) for refs in found]


def _open_during(opened: datetime, closed: datetime | None, day: date, tz: ZoneInfo) -> bool:
    """Whether an incident open from `opened` to `closed` was open at some time on `day`."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(day + _DAY, datetime.min.time(), tzinfo=tz)
    return opened < end and (closed is None or closed >= start)


def _bar(day: DayUptime, incidents: tuple[IncidentRef, ...]) -> UptimeDay:
    return UptimeDay(
        day=day.day,
        uptime=day.uptime,
        outage_minutes=day.outage_minutes,
        major_minutes=round(day.major_seconds / 60),
        partial_minutes=round(day.partial_seconds / 60),
        worst=day.worst.value if day.worst else None,
        incidents=incidents,
    )
