"""Metric use cases: add a metric, push points (one, or a CSV file of them), list them.

Metrics come from monitoring, not from people in Slack, so these run from the
`statusbot metrics` program. Input is checked in full before anything is
written: a bad row anywhere in a file names its line and nothing is stored.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from commands import textrules, words
from commands.common import CLOCK_SKEW, audit_change
from commands.context import Context
from commands.errors import CommandError
from commands.result import Result
from commands.when import OUT_OF_RANGE, parse_when, utc_in_years
from storage import metrics as store
from storage.metrics import MAX_VALUE
from storage.models import Metric

USAGE = {
    "add": "statusbot metrics add NAME --unit UNIT [--description TEXT]",
    "push": "statusbot metrics push NAME VALUE [--at WHEN]\n"
    "statusbot metrics push NAME --file points.csv   (rows: time,value; ISO 8601 times)",
    "list": "statusbot metrics list",
}
# Why a value beyond ±MAX_VALUE is refused (README, "Metrics", says the same).
VALUE_RANGE = (
    f"a value must lie between -{MAX_VALUE:,.0f} and {MAX_VALUE:,.0f} (±1e12) for a chart "
    "to draw it"
)
# Errors listed from one file before the rest are only counted.
MAX_REPORTED = 5


def add_metric(
    session: Session, ctx: Context, *, name: str, unit: str, description: str | None = None
) -> Result:
    """Add a metric, shown as a chart on the page once it has points."""
    usage = USAGE["add"]
    name = textrules.check(name, textrules.NAME, usage)
    if not name:
        raise CommandError("Name the metric, e.g. 'API Response Times'.", usage)
    unit = textrules.check(unit, textrules.UNIT, usage)
    description = textrules.check(description or "", textrules.DESCRIPTION, usage) or None
    existing = store.by_name(session, name)
    if existing is not None:
        raise CommandError(f"There is already a metric called '{existing.name}'.", usage)
    metric = store.add(session, name=name, unit=unit, description=description, now=ctx.now)
    audit_change(
        session,
        ctx,
        action="metric.add",
        target=name,
        before=None,
        after={"name": name, "unit": unit, "description": description},
    )
    shown = f" ({metric.unit})" if metric.unit else ""
    return Result(reply=f"Added the metric {name}{shown}.", changed=True)


def push_value(
    session: Session, ctx: Context, *, name: str, value: str, at: str | None = None
) -> Result:
    """Record one point: VALUE now, or at a past WHEN."""
    usage = USAGE["push"]
    metric = _metric(session, name, usage)
    number = _number(value)
    if number is None:
        raise CommandError(f"'{value}' is not a number; give the value like 42 or 0.35.", usage)
    if abs(number) > MAX_VALUE:
        raise CommandError(f"{value.strip()} is out of range: {VALUE_RANGE}.", usage)
    when = ctx.now
    if at is not None:
        when = parse_when(at, now=ctx.now, tz=ctx.tz, prefer="past")
        if when > ctx.now + CLOCK_SKEW:
            raise CommandError(
                f"--at {words.when(when, ctx.tz)} is in the future; a point records what was "
                "measured. Leave --at out to use now.",
                usage,
            )
        when = min(when, ctx.now)
    store.add_points(session, metric, [(when, number)])
    return Result(
        reply=f"Recorded {metric.name} = {_show(number)}{_unit(metric)} at "
        f"{words.when(when, ctx.tz)}.",
        changed=True,
    )


def push_csv(session: Session, ctx: Context, *, name: str, text: str, source: str) -> Result:
    """Record every row of a CSV file (time,value; a header line is optional), or none of them."""
    usage = USAGE["push"]
    metric = _metric(session, name, usage)
    points = parse_points(text, source=source, now=ctx.now)
    if not points:
        raise CommandError(f"{source} has no points: write one 'time,value' row a line.", usage)
    count = store.add_points(session, metric, points)
    first = min(at for at, _ in points)
    last = max(at for at, _ in points)
    return Result(
        reply=f"Recorded {count:,} point{'s' if count != 1 else ''} of {metric.name} from "
        f"{words.when(first, ctx.tz)} to {words.when(last, ctx.tz)}.",
        changed=True,
    )


def push_points(
    session: Session, ctx: Context, *, name: str, points: Sequence[tuple[datetime, float]]
) -> Result:
    """Record points sent by a program (the metrics HTTP API): all of them, or none.

    An unknown metric is a CommandError about the field "metric"; a point in
    the future or outside the years 2000 to 2100, or a value not a finite number
    within ±MAX_VALUE, one about "points".
    """
    usage = USAGE["push"]
    metric = store.by_name(session, name)
    if metric is None:
        known = [m.name for m in store.all_metrics(session)]
        listing = ", ".join(f"'{n}'" for n in known) if known else "none yet"
        raise CommandError(
            f"There is no metric '{name}'. Metrics: {listing}.", usage, field="metric"
        )
    for n, (at, value) in enumerate(points):
        if not math.isfinite(value):
            raise CommandError(f"Point {n}: the value must be a finite number.", field="points")
        if abs(value) > MAX_VALUE:
            raise CommandError(
                f"Point {n}: {value:g} is out of range: {VALUE_RANGE}.", field="points"
            )
        if utc_in_years(at) is None:
            raise CommandError(
                f"Point {n}: " + OUT_OF_RANGE.format(said=at.isoformat()), field="points"
            )
        if at > ctx.now + CLOCK_SKEW:
            raise CommandError(
                f"Point {n}: {at.isoformat()} is in the future; a point records what was measured.",
                field="points",
            )
    count = store.add_points(session, metric, [(min(at, ctx.now), v) for at, v in points])
    return Result(
        reply=f"Recorded {count:,} point{'s' if count != 1 else ''} of {metric.name}.",
        changed=True,
    )


def list_metrics(session: Session, ctx: Context) -> Result:
    """Every metric with its unit, point count and newest point."""
    metrics = store.all_metrics(session)
    if not metrics:
        return Result(reply="No metrics yet. Add one: " + USAGE["add"])
    lines = []
    for m in metrics:
        count = store.point_count(session, m)
        last = store.last_point(session, m)
        newest = (
            f", newest {_show(last[1])}{_unit(m)} at {words.when(last[0], ctx.tz)}" if last else ""
        )
        lines.append(f"{m.name} ({m.unit or 'no unit'}): {count:,} points{newest}")
    return Result(reply="\n".join(lines))


def parse_points(text: str, *, source: str, now: datetime) -> list[tuple[datetime, float]]:
    """Read `time,value` rows; raise one CommandError naming every bad line (up to a few)."""
    points: list[tuple[datetime, float]] = []
    problems: list[str] = []
    bad = 0
    for line_no, row in _rows(text):
        fields = [f.strip() for f in row]
        if not any(fields):
            continue
        if line_no == 1 and not points and _is_header(fields):
            continue
        problem = None
        if len(fields) != 2:
            problem = f"expected 2 fields (time,value), found {len(fields)}"
        else:
            given = _aware(fields[0])
            at = utc_in_years(given) if given is not None else None
            value = _number(fields[1])
            if given is None:
                problem = (
                    f"'{fields[0]}' is not an ISO 8601 time with a UTC offset, e.g. "
                    "2026-06-10T09:30:00Z or 2026-06-10 19:30+10:00"
                )
            elif at is None:
                problem = OUT_OF_RANGE.format(said=fields[0]).removesuffix(".")
            elif value is None:
                problem = f"'{fields[1]}' is not a number"
            elif abs(value) > MAX_VALUE:
                problem = f"{fields[1]} is out of range: {VALUE_RANGE}"
            elif at > now + CLOCK_SKEW:
                problem = f"{fields[0]} is in the future"
            else:
                # As --at does: a clock a little ahead is read as now.
                points.append((min(at, now), value))
        if problem is not None:
            bad += 1
            if len(problems) < MAX_REPORTED:
                problems.append(f"{source} line {line_no}: {problem}.")
    if problems:
        more = bad - len(problems)
        tail = f"\n…and {more:,} more bad line{'s' if more != 1 else ''}." if more > 0 else ""
        raise CommandError(
            "Nothing was recorded:\n" + "\n".join(problems) + tail,
            USAGE["push"],
        )
    return points


def _rows(text: str) -> Iterable[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), strict=True)
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as error:
        raise CommandError(
            f"line {reader.line_num}: {error}; write one 'time,value' row a line.", USAGE["push"]
        ) from error


def _is_header(fields: list[str]) -> bool:
    """A first line whose value column is not a number and whose time is no time."""
    return (
        len(fields) >= 1
        and _aware(fields[0]) is None
        and (len(fields) < 2 or _number(fields[1]) is None)
    )


def _metric(session: Session, name: str, usage: str) -> Metric:
    metric = store.by_name(session, name)
    if metric is None:
        known = [m.name for m in store.all_metrics(session)]
        hint = f" The metrics are: {', '.join(known)}." if known else " There are none yet."
        raise CommandError(f"There is no metric called '{name}'.{hint}", usage)
    return metric


def _aware(text: str) -> datetime | None:
    """An ISO 8601 time with a UTC offset, as written (converting it is the caller's step)."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    if at.tzinfo is None or at.utcoffset() is None:
        return None
    return at


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _show(value: float) -> str:
    return f"{value:g}"


def _unit(metric: Metric) -> str:
    return f" {metric.unit}" if metric.unit else ""
