"""Metrics: named series of (time, value) points, and their charts cut down in SQL.

A chart never reads raw points: each view ("day", "week", "month") averages
the points into fixed buckets aligned on the Unix epoch (5 minutes, 1 hour, 4
hours) with a GROUP BY, so a month of per-minute points comes back as 180 rows.
The bucket number is integer epoch seconds divided by the bucket size, worked
out by each backend in its own dialect.

A value a chart can draw lies within ±MAX_VALUE. The use cases refuse any
other, and the chart query leaves out any that is stored anyway (from before
the rule, or NaN and infinities written by hand): an average of huge values
overflows, on PostgreSQL as an error, and one such point must not stop the page.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    cast,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.orm import Session

from storage.models import Metric, MetricPoint

# The largest magnitude a point may have: far beyond any latency, count or
# percentage, yet small enough that a bucket's sum of millions of them stays finite.
MAX_VALUE = 1e12

# Rows per INSERT batch when pushing many points: keeps memory flat for big files.
_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class ChartRange:
    """One chart view: how far back it reaches and how wide its buckets are."""

    name: str
    buckets: int
    bucket_seconds: int

    @property
    def span(self) -> timedelta:
        """The time the view covers."""
        return timedelta(seconds=self.buckets * self.bucket_seconds)

    def first_bucket(self, now: datetime) -> int:
        """The number of the oldest bucket shown at `now` (the newest holds `now`)."""
        return int(now.timestamp()) // self.bucket_seconds - (self.buckets - 1)


# Day: 288 × 5 min; week: 168 × 1 h; month: 180 × 4 h.
RANGES: tuple[ChartRange, ...] = (
    ChartRange("day", 288, 300),
    ChartRange("week", 168, 3_600),
    ChartRange("month", 180, 14_400),
)

Series = tuple[tuple[datetime, float], ...]


@dataclass(frozen=True, slots=True)
class MetricView:
    """A metric and its points, already cut to each chart's range and resolution."""

    code: str
    name: str
    unit: str
    description: str | None
    # view name ("day", "week", "month") → (time, value) points, oldest first
    series: dict[str, tuple[tuple[datetime, float], ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """A metric without its chart: what the v1 API lists."""

    code: str
    name: str
    unit: str
    description: str | None
    created_at: datetime
    last_at: datetime | None


def info_of(session: Session, metric: Metric) -> MetricInfo:
    """A metric and when its newest point was measured."""
    last = last_point(session, metric)
    return MetricInfo(
        code=metric.code,
        name=metric.name,
        unit=metric.unit,
        description=metric.description,
        created_at=metric.created_at,
        last_at=last[0] if last else None,
    )


def by_code(session: Session, code: str) -> Metric | None:
    """The metric with this public id."""
    return session.scalars(select(Metric).where(Metric.code == code)).first()


def name_key(name: str) -> str:
    """How metric names compare: case-insensitive, with runs of spaces folded."""
    return " ".join(name.split()).casefold()


def by_name(session: Session, name: str) -> Metric | None:
    """The metric with this name, any case."""
    return session.scalars(select(Metric).where(Metric.name_key == name_key(name))).first()


def all_metrics(session: Session) -> list[Metric]:
    """Every metric, in page order."""
    return list(session.scalars(select(Metric).order_by(Metric.position, Metric.id)))


class MetricRow(NamedTuple):
    """What the page shows of a metric besides its points."""

    id: int
    code: str
    name: str
    unit: str
    description: str | None


# Every metric as a MetricRow, in page order; and the newest point's id (0: none).
ROWS = select(*(getattr(Metric, f) for f in MetricRow._fields)).order_by(Metric.position, Metric.id)
NEWEST_POINT = select(func.coalesce(func.max(MetricPoint.id), 0))


def add(
    session: Session,
    *,
    name: str,
    unit: str,
    description: str | None,
    now: datetime,
    position: int | None = None,
) -> Metric:
    """A new metric, placed after the others unless a position is given."""
    if position is None:
        position = (session.scalar(select(func.max(Metric.position))) or 0) + 1
    metric = Metric(
        name=name,
        name_key=name_key(name),
        unit=unit,
        description=description,
        position=position,
        created_at=now,
    )
    session.add(metric)
    session.flush()
    return metric


def add_points(session: Session, metric: Metric, points: Iterable[tuple[datetime, float]]) -> int:
    """Insert points in bulk, in the caller's transaction; returns how many."""
    count = 0
    batch: list[dict[str, object]] = []
    for at, value in points:
        batch.append({"metric_id": metric.id, "at": at, "value": value})
        if len(batch) >= _BATCH:
            session.execute(insert(MetricPoint), batch)
            count += len(batch)
            batch = []
    if batch:
        session.execute(insert(MetricPoint), batch)
        count += len(batch)
    return count


def point_count(session: Session, metric: Metric) -> int:
    """How many points a metric has."""
    stmt = select(func.count()).select_from(MetricPoint).where(MetricPoint.metric_id == metric.id)
    return session.scalar(stmt) or 0


def last_point(session: Session, metric: Metric) -> tuple[datetime, float] | None:
    """The newest point of a metric, if it has any."""
    stmt = (
        select(MetricPoint.at, MetricPoint.value)
        .where(MetricPoint.metric_id == metric.id)
        .order_by(MetricPoint.at.desc(), MetricPoint.id.desc())
        .limit(1)
    )
    row = session.execute(stmt).first()
    return (row[0], row[1]) if row else None


def chart(
    session: Session,
    metric_id: int,
    view: ChartRange,
    *,
    now: datetime,
    from_bucket: int | None = None,
) -> Series:
    """One view of a metric: the average of each bucket that has points, oldest first.

    With `from_bucket`, only the buckets from that one on (to refresh the tail of
    a chart that gained points).
    """
    first = view.first_bucket(now)
    if from_bucket is not None:
        first = max(first, from_bucket)
    since = datetime.fromtimestamp(first * view.bucket_seconds, UTC)
    bucket = _bucket(session, view.bucket_seconds).label("bucket")
    stmt = (
        select(bucket, func.avg(MetricPoint.value))
        .where(
            MetricPoint.metric_id == metric_id,
            MetricPoint.at >= since,
            MetricPoint.at <= now,
            # NaN compares greater than every number on PostgreSQL, and SQLite stores it
            # as NULL: either way, this range leaves it out with the infinities.
            MetricPoint.value.between(-MAX_VALUE, MAX_VALUE),
        )
        .group_by(bucket)
        .order_by(bucket)
    )
    size = view.bucket_seconds
    return tuple(
        (datetime.fromtimestamp(int(b) * size, UTC), float(avg)) for b, avg in session.execute(stmt)
    )


def bucket_of(view: ChartRange, at: datetime) -> int:
    """The number of the bucket a time falls in."""
    return int(at.timestamp()) // view.bucket_seconds


def points_added_since(session: Session, point_id: int) -> dict[int, tuple[datetime, datetime]]:
    """For points with ids above `point_id`: per metric, the oldest and newest time among them."""
    # The id as a literal: planned for its own value, the range is a short index scan,
    # where a prepared statement's plan for any value may read every point.
    stmt = (
        select(MetricPoint.metric_id, func.min(MetricPoint.at), func.max(MetricPoint.at))
        .where(MetricPoint.id > literal_column(str(int(point_id))))
        .group_by(MetricPoint.metric_id)
    )
    return {metric_id: (oldest, newest) for metric_id, oldest, newest in session.execute(stmt)}


def series(session: Session, metric: Metric, *, now: datetime) -> dict[str, Series]:
    """Every chart view of a metric at `now`: view name → points."""
    return {view.name: chart(session, metric.id, view, now=now) for view in RANGES}


def view_of(metric: Metric | MetricRow, series: dict[str, Series]) -> MetricView:
    """A metric (or its row) and its series as a frozen value for the renderers."""
    return MetricView(
        code=metric.code,
        name=metric.name,
        unit=metric.unit,
        description=metric.description,
        series=series,
    )


def metric_views(session: Session, *, now: datetime) -> list[MetricView]:
    """Every metric with all its chart views, in page order."""
    return [view_of(m, series(session, m, now=now)) for m in all_metrics(session)]


def _bucket(session: Session, seconds: int) -> ColumnElement[int]:
    """The bucket number of each point: floor(epoch seconds / bucket size), per dialect."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite stores the time as ISO text; unixepoch() (3.38 on) gives its whole epoch
        # seconds at a third less than strftime('%s') and a cast, which older ones need.
        # Dividing two integers in SQLite floors (times are after 1970).
        epoch = (
            func.unixepoch(MetricPoint.at, type_=Integer)
            if sqlite3.sqlite_version_info >= (3, 38)
            else cast(func.strftime("%s", MetricPoint.at), Integer)
        )
        return epoch.op("/", return_type=Integer)(seconds)
    epoch_pg = func.extract("epoch", MetricPoint.at)
    return cast(func.floor(epoch_pg.op("/")(seconds)), BigInteger)
