"""Uptime from a component's status history: pure arithmetic, no session, no I/O.

Statuspage's formula (SPEC §2): ``1 - (major_seconds + 0.3 * partial_seconds) /
seconds_in_window``; degraded performance and maintenance count as up.

Days are local calendar days in the page's zone, measured in real elapsed
seconds between local midnights, so a day across a DST change has 23 or 25
hours. One sweep over the history fills every day: the history is sorted once,
bisected to the start of the window, then walked forward alongside the day
boundaries.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from operator import itemgetter

from storage.rules import SEVERITY, ComponentStatus

# Share of a partial outage's seconds that count as downtime (Statuspage's weight).
PARTIAL_WEIGHT = 0.3

# A nominal day, for weighting a hand-built DayUptime that carries no window length.
_NOMINAL_DAY_SECONDS = 86_400.0

# Seconds are accumulated in a list indexed by severity, so the worst state seen
# in a day is simply the highest index that received any time.
_BY_SEVERITY: list[ComponentStatus] = sorted(SEVERITY, key=SEVERITY.__getitem__)
_MAJOR = SEVERITY[ComponentStatus.MAJOR]
_PARTIAL = SEVERITY[ComponentStatus.PARTIAL]
_DEGRADED = SEVERITY[ComponentStatus.DEGRADED]
_MAINTENANCE = SEVERITY[ComponentStatus.MAINTENANCE]

_time = itemgetter(0)

Change = tuple[datetime, ComponentStatus]


@dataclass(frozen=True, slots=True)
class DayUptime:
    """One local day of one component: its uptime and the seconds behind it."""

    day: date  # local calendar day in the page's zone
    uptime: float | None  # 0..1, None = no data (day before start_date, or in the future)
    major_seconds: float
    partial_seconds: float
    degraded_seconds: float
    maintenance_seconds: float
    worst: ComponentStatus | None  # worst state seen during the day (None when no data)
    # Real seconds the uptime was computed over: 82,800, 86,400 or 90,000 for a
    # whole day, less for today (up to `now`); 0 when there is no data. It
    # weights the day in `uptime_over_days`.
    window_seconds: float = 0.0

    @property
    def outage_minutes(self) -> int:
        """Minutes of partial or major outage in the day, rounded."""
        return round((self.major_seconds + self.partial_seconds) / 60)


def daily_uptime(
    changes: Sequence[Change],
    *,
    initial: ComponentStatus,
    start_date: date | None,
    tz: tzinfo,
    now: datetime,
    days: int = 90,
) -> list[DayUptime]:
    """The last `days` local days ending today (oldest first), from a component's status history."""
    _require_aware(now, "now")
    if days < 0:
        raise ValueError(f"days must not be negative, got {days}")
    today = now.astimezone(tz).date()
    day_list = [today - timedelta(days=back) for back in range(days - 1, -1, -1)]
    # Days before the component's start date have no data; the start date itself
    # counts from its local midnight.
    first = 0 if start_date is None else _first_index_at_or_after(day_list, start_date)
    no_data = [_no_data(d) for d in day_list[:first]]
    counted = day_list[first:]
    if not counted:
        return no_data
    midnights = [_local_midnight(d, tz) for d in counted]
    bounds = [m.timestamp() for m in midnights]
    bounds.append(now.timestamp())
    seconds, worst = _sweep(_ordered(changes), initial, midnights[0], bounds)
    result = no_data
    for k, d in enumerate(counted):
        result.append(_day(d, bounds[k + 1] - bounds[k], seconds[k], worst[k]))
    return result


def window_uptime(
    changes: Sequence[Change],
    *,
    initial: ComponentStatus,
    start: datetime,
    end: datetime,
) -> float | None:
    """Uptime over [start, end); None when the window is empty."""
    _require_aware(start, "start")
    _require_aware(end, "end")
    bounds = [start.timestamp(), end.timestamp()]
    if bounds[1] <= bounds[0]:
        return None
    seconds, _ = _sweep(_ordered(changes), initial, start, bounds)
    return _uptime(seconds[0], bounds[1] - bounds[0])


def uptime_over_days(days: Sequence[DayUptime]) -> float | None:
    """The percentage under the bars: uptime over the days that have data, seconds-weighted."""
    return uptime_ratio(*uptime_sums(days))


def uptime_sums(
    days: Sequence[DayUptime], weighted: float = 0.0, total: float = 0.0
) -> tuple[float, float]:
    """`uptime_over_days`'s running sums (uptime × seconds, seconds) carried on over `days`.

    Summing a strip's past days once and carrying on with today's gives the very
    float that summing all of them does: the additions come in the same order.
    """
    for day in days:
        if day.uptime is None:
            continue
        weight = day.window_seconds if day.window_seconds > 0 else _NOMINAL_DAY_SECONDS
        weighted += day.uptime * weight
        total += weight
    return weighted, total


def uptime_ratio(weighted: float, total: float) -> float | None:
    """The uptime that `uptime_sums` gives; None when no day had data."""
    if total == 0:
        return None
    return weighted / total


def _ordered(changes: Sequence[Change]) -> list[Change]:
    # sorted() is stable, so two changes at the same instant keep their order
    # and the later one is the state from that instant on.
    return sorted(changes, key=_time)


def _sweep(
    ordered: list[Change], initial: ComponentStatus, start: datetime, bounds: list[float]
) -> tuple[list[list[float]], list[int]]:
    """Seconds per severity, and the worst severity held for any time, per interval.

    `bounds` are ascending epoch seconds, `start` is bounds[0] as a datetime (to
    bisect on without a float round trip); interval k is [bounds[k], bounds[k+1]).
    Only states held for a positive time count as seen: a change overwritten at
    the same instant, or made exactly at the window's end, is not.
    """
    n = len(bounds) - 1
    seconds = [[0.0] * len(_BY_SEVERITY) for _ in range(n)]
    worst = [-1] * n
    if n <= 0:
        return seconds, worst
    i = bisect_right(ordered, start.astimezone(UTC), key=_time)
    state = SEVERITY[ComponentStatus(ordered[i - 1][1] if i else initial)]
    end = bounds[n]
    t = bounds[0]
    k = 0
    while True:
        until = min(ordered[i][0].timestamp(), end) if i < len(ordered) else end
        while t < until:
            edge = bounds[k + 1]
            stop = min(until, edge)
            if stop > t:
                seconds[k][state] += stop - t
                if state > worst[k]:
                    worst[k] = state
                t = stop
            if t >= edge:
                k += 1
        if until >= end:
            return seconds, worst
        state = SEVERITY[ComponentStatus(ordered[i][1])]
        i += 1


def _day(day: date, window: float, seconds: list[float], worst: int) -> DayUptime:
    if window <= 0:
        # Today at exactly local midnight (or a day a zone skipped): nothing to measure.
        return _no_data(day)
    return DayUptime(
        day=day,
        uptime=_uptime(seconds, window),
        major_seconds=seconds[_MAJOR],
        partial_seconds=seconds[_PARTIAL],
        degraded_seconds=seconds[_DEGRADED],
        maintenance_seconds=seconds[_MAINTENANCE],
        worst=_BY_SEVERITY[worst] if worst >= 0 else None,
        window_seconds=window,
    )


def _no_data(day: date) -> DayUptime:
    return DayUptime(
        day=day,
        uptime=None,
        major_seconds=0.0,
        partial_seconds=0.0,
        degraded_seconds=0.0,
        maintenance_seconds=0.0,
        worst=None,
    )


def _uptime(seconds: list[float], window: float) -> float:
    down = seconds[_MAJOR] + PARTIAL_WEIGHT * seconds[_PARTIAL]
    # Clamp: float sums over many segments may overshoot the window by a hair.
    return min(1.0, max(0.0, 1.0 - down / window))


def _local_midnight(day: date, tz: tzinfo) -> datetime:
    """The instant `day` begins in `tz`.

    fold=0 is right in both DST edge cases at midnight: in a gap (00:00 jumps to
    01:00) it resolves to the transition instant, where the day really begins;
    when midnight repeats, the day begins at its first occurrence.
    """
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def _first_index_at_or_after(days: list[date], start_date: date) -> int:
    if not days or start_date <= days[0]:
        return 0
    return min(len(days), (start_date - days[0]).days)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
