"""Metrics: adding them, pushing points (one or a CSV file), and charts downsampled in SQL."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.runtime import Runtime
from commands import metrics as commands
from commands.errors import CommandError
from storage import metrics as store
from storage.db import transaction
from storage.models import AuditEvent, Metric, MetricPoint
from tests.conftest import T0
from tests.helpers import Program, dump

NOW = T0  # 2026-06-10 10:00 UTC


def add(runtime: Runtime, name: str = "API Response Times", unit: str = "ms") -> str:
    with transaction(runtime.factory) as session:
        return commands.add_metric(session, runtime.context("U0OPS"), name=name, unit=unit).reply


def push_csv(runtime: Runtime, text: str, name: str = "API Response Times") -> str:
    with transaction(runtime.factory) as session:
        result = commands.push_csv(
            session, runtime.context("U0OPS"), name=name, text=text, source="points.csv"
        )
        return result.reply


def points(engine: Engine) -> list[tuple[datetime, float]]:
    with Session(engine) as s:
        rows = s.execute(select(MetricPoint.at, MetricPoint.value).order_by(MetricPoint.at))
        return [(at, value) for at, value in rows]


# --- Adding --------------------------------------------------------------------------------


def test_add_metric_is_audited_and_placed_after_the_others(
    runtime: Runtime, engine: Engine
) -> None:
    assert add(runtime) == "Added the metric API Response Times (ms)."
    with transaction(runtime.factory) as session:
        commands.add_metric(
            session,
            runtime.context("U0OPS"),
            name="  Queue   depth ",
            unit="",
            description="Jobs waiting.",
        )
    with Session(engine) as s:
        found = s.scalars(select(Metric).order_by(Metric.position)).all()
        assert [(m.name, m.unit, m.description, m.position) for m in found] == [
            ("API Response Times", "ms", None, 1),
            ("Queue depth", "", "Jobs waiting.", 2),
        ]
        actions = s.scalars(select(AuditEvent.action)).all()
        assert actions == ["metric.add", "metric.add"]


@pytest.mark.parametrize(
    ("name", "unit", "description", "says"),
    [
        ("api response TIMES", "ms", None, "already a metric called 'API Response Times'"),
        ("   ", "ms", None, "Name the metric"),
        ("x" * 201, "ms", None, "200 characters"),
        ("Latency", "milliseconds-per-request", None, "unit to 20"),
        ("Latency", "ms", "d" * 1001, "1,000 characters"),
    ],
)
def test_add_metric_refuses_bad_input_and_writes_nothing(
    runtime: Runtime, engine: Engine, name: str, unit: str, description: str | None, says: str
) -> None:
    add(runtime)
    before = dump(engine)
    with pytest.raises(CommandError) as error, transaction(runtime.factory) as session:
        commands.add_metric(
            session, runtime.context("U0OPS"), name=name, unit=unit, description=description
        )
    assert says in error.value.reply()
    assert "statusbot metrics add NAME" in error.value.reply()
    assert dump(engine) == before


# --- Pushing -------------------------------------------------------------------------------


def test_push_one_value_now_and_at_a_past_time(runtime: Runtime, engine: Engine) -> None:
    add(runtime)
    with transaction(runtime.factory) as session:
        reply = commands.push_value(
            session, runtime.context("U0OPS"), name="api response times", value="87.5"
        )
    assert reply.reply == "Recorded API Response Times = 87.5 ms at Jun 10, 20:00 AEST."
    with transaction(runtime.factory) as session:
        commands.push_value(
            session, runtime.context("U0OPS"), name="API Response Times", value="-3", at="2h ago"
        )
    assert points(engine) == [(NOW - timedelta(hours=2), -3.0), (NOW, 87.5)]


@pytest.mark.parametrize(
    ("name", "value", "at", "says"),
    [
        ("Nope", "1", None, "no metric called 'Nope'"),
        ("API Response Times", "fast", None, "'fast' is not a number"),
        ("API Response Times", "nan", None, "not a number"),
        ("API Response Times", "inf", None, "not a number"),
        ("API Response Times", "1", "in 2h", "in the future"),
        ("API Response Times", "1", "yesterdayish", "can't read"),
    ],
)
def test_push_refuses_bad_input_and_writes_nothing(
    runtime: Runtime, engine: Engine, name: str, value: str, at: str | None, says: str
) -> None:
    add(runtime)
    before = dump(engine)
    with pytest.raises(CommandError) as error, transaction(runtime.factory) as session:
        commands.push_value(session, runtime.context("U0OPS"), name=name, value=value, at=at)
    assert says in error.value.reply()
    assert dump(engine) == before


def test_push_a_csv_file_with_or_without_a_header(runtime: Runtime, engine: Engine) -> None:
    add(runtime)
    reply = push_csv(
        runtime,
        "\ufefftime,value\n"
        "2026-06-10T08:00:00Z,80\n"
        "\n"
        "2026-06-10 18:30:00+10:00, 90.5\n"
        '"2026-06-10T09:00:00.250+00:00","100"\n',
    )
    assert reply == (
        "Recorded 3 points of API Response Times from Jun 10, 18:00 AEST to Jun 10, 19:00 AEST."
    )
    push_csv(runtime, "2026-06-10T09:59:30Z,70\n")
    assert points(engine) == [
        (datetime(2026, 6, 10, 8, 0, tzinfo=UTC), 80.0),
        (datetime(2026, 6, 10, 8, 30, tzinfo=UTC), 90.5),
        (datetime(2026, 6, 10, 9, 0, 0, 250_000, tzinfo=UTC), 100.0),
        (datetime(2026, 6, 10, 9, 59, 30, tzinfo=UTC), 70.0),
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "time,value\n2026-06-10T08:00:00Z,80\n2026-06-10T08:01:00Z,slow\n",
            "points.csv line 3: 'slow' is not a number.",
        ),
        ("2026-06-10T08:00:00Z,80\n2026-06-10 08:01,81\n", "points.csv line 2: '2026-06-10 08:01'"),
        ("2026-06-10T08:00:00Z,80\nyesterday,81\n", "line 2: 'yesterday' is not an ISO 8601"),
        ("2026-06-10T08:00:00Z,80,extra\n", "line 1: expected 2 fields (time,value), found 3"),
        ("2026-06-10T08:00:00Z\n2026-06-10T08:01:00Z,1\n", "line 1: expected 2 fields"),
        ("2026-06-11T08:00:00Z,80\n", "line 1: 2026-06-11T08:00:00Z is in the future"),
        ("2026-06-10T08:00:00Z,nan\n", "line 1: 'nan' is not a number"),
        ("time,value\n\n", "has no points"),
        ("", "has no points"),
        ('2026-06-10T08:00:00Z,"80\n', "line"),
    ],
)
def test_a_bad_row_anywhere_writes_nothing_and_names_its_line(
    runtime: Runtime, engine: Engine, text: str, says: str
) -> None:
    add(runtime)
    before = dump(engine)
    with pytest.raises(CommandError) as error:
        push_csv(runtime, text)
    assert says in error.value.reply()
    assert dump(engine) == before


def test_many_bad_rows_are_listed_up_to_five_then_counted(runtime: Runtime) -> None:
    add(runtime)
    text = "".join(f"2026-06-10T08:{m:02d}:00Z,bad\n" for m in range(8))
    with pytest.raises(CommandError) as error:
        push_csv(runtime, text)
    reply = error.value.reply()
    assert reply.startswith("Nothing was recorded:\npoints.csv line 1:")
    assert "line 5:" in reply and "line 6:" not in reply
    assert "…and 3 more bad lines." in reply


def test_list_metrics(runtime: Runtime) -> None:
    with transaction(runtime.factory) as session:
        assert "No metrics yet" in commands.list_metrics(session, runtime.context("U0")).reply
    add(runtime)
    push_csv(runtime, "2026-06-10T08:00:00Z,80\n2026-06-10T09:00:00Z,95\n")
    with transaction(runtime.factory) as session:
        reply = commands.list_metrics(session, runtime.context("U0")).reply
    assert reply == "API Response Times (ms): 2 points, newest 95 ms at Jun 10, 19:00 AEST"


# --- Charts, downsampled in SQL --------------------------------------------------------------


def reference(
    raw: list[tuple[datetime, float]], view: store.ChartRange, now: datetime
) -> list[tuple[datetime, float]]:
    """The same downsampling, the slow obvious way, to check SQL against."""
    size = view.bucket_seconds
    first = view.first_bucket(now)
    buckets: dict[int, list[float]] = defaultdict(list)
    for at, value in raw:
        b = math.floor(at.timestamp()) // size
        if first <= b and at <= now:
            buckets[b].append(value)
    return [
        (datetime.fromtimestamp(b * size, UTC), sum(v) / len(v)) for b, v in sorted(buckets.items())
    ]


@pytest.fixture(params=["unixepoch", "strftime"])
def sqlite_epoch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """On SQLite, bucket by unixepoch() and by the strftime('%s') of SQLite before 3.38."""
    if request.param == "strftime":
        monkeypatch.setattr(store.sqlite3, "sqlite_version_info", (3, 37, 2))
    return str(request.param)


def test_views_have_their_resolution_and_average_each_bucket(
    runtime: Runtime, engine: Engine, sqlite_epoch: str
) -> None:
    add(runtime)
    # A point every 10 minutes for 31 days, its value the minute of the hour plus a
    # slow drift, and one in the future that no view may show.
    raw = [
        (NOW - timedelta(minutes=10 * k), float((NOW - timedelta(minutes=10 * k)).minute) + k / 100)
        for k in range(31 * 24 * 6)
    ]
    with transaction(runtime.factory) as session:
        metric = store.by_name(session, "API Response Times")
        assert metric is not None
        store.add_points(session, metric, [*raw, (NOW + timedelta(minutes=1), 1e9)])
    with Session(engine) as session:
        metric = store.by_name(session, "API Response Times")
        assert metric is not None
        series = store.series(session, metric, now=NOW)

    # Day: 5-minute buckets over 24 h, every other one holds a point (they come every 10').
    assert len(series["day"]) == 144
    # Week: 168 hourly buckets, month: 180 four-hour buckets, each with points.
    assert len(series["week"]) == 168
    assert len(series["month"]) == 180
    for view in store.RANGES:
        got = series[view.name]
        want = reference(raw, view, NOW)
        assert [t for t, _ in got] == [t for t, _ in want]
        assert [v for _, v in got] == pytest.approx([v for _, v in want])
        assert all(t.tzinfo is not None for t, _ in got)
        assert got[-1][0] <= NOW < got[-1][0] + timedelta(seconds=view.bucket_seconds)
    # One hourly bucket by hand: 09:00-10:00 holds minutes 0, 10 … 50 (plus the drift).
    hour = dict(series["week"])[datetime(2026, 6, 10, 9, 0, tzinfo=UTC)]
    assert hour == pytest.approx(25 + sum(k / 100 for k in range(1, 7)) / 6)


def test_a_point_late_in_a_bucket_is_not_rounded_into_the_next(
    runtime: Runtime, engine: Engine, sqlite_epoch: str
) -> None:
    add(runtime)
    late = datetime(2026, 6, 10, 9, 4, 59, 900_000, tzinfo=UTC)
    with transaction(runtime.factory) as session:
        metric = store.by_name(session, "API Response Times")
        assert metric is not None
        store.add_points(session, metric, [(late, 10.0), (late + timedelta(seconds=0.2), 30.0)])
    with Session(engine) as session:
        metric = store.by_name(session, "API Response Times")
        assert metric is not None
        day = store.chart(session, metric.id, store.RANGES[0], now=NOW)
    assert day == (
        (datetime(2026, 6, 10, 9, 0, tzinfo=UTC), 10.0),
        (datetime(2026, 6, 10, 9, 5, tzinfo=UTC), 30.0),
    )


def test_metric_views_in_page_order(runtime: Runtime, engine: Engine) -> None:
    add(runtime, "Zeta", "%")
    add(runtime, "Alpha", "ms")
    push_csv(runtime, "2026-06-10T09:00:00Z,5\n", name="Alpha")
    with Session(engine) as session:
        views = store.metric_views(session, now=NOW)
    assert [(v.name, v.unit) for v in views] == [("Zeta", "%"), ("Alpha", "ms")]
    assert views[0].series == {"day": (), "week": (), "month": ()}
    assert views[1].series["day"] == ((datetime(2026, 6, 10, 9, 0, tzinfo=UTC), 5.0),)


# --- Through the program ---------------------------------------------------------------------


def test_metrics_commands_through_the_program(empty_db: tuple[Engine, str], tmp_path: Path) -> None:
    engine, db_url = empty_db
    # The program's clock stands at NOW: the points below are never in the future,
    # nor too old, whatever today's date.
    statusbot = Program(db_url, tmp_path, STATUSBOT_NOW=NOW.isoformat())
    assert statusbot("db", "upgrade").returncode == 0
    done = statusbot("metrics", "add", "API Response Times", "--unit", "ms")
    assert done.returncode == 0, done.stderr
    assert "Added the metric API Response Times (ms)." in done.stdout

    good = tmp_path / "good.csv"
    good.write_text("time,value\n2026-06-10T08:00:00Z,80\n2026-06-10T08:05:00Z,84\n")
    done = statusbot("metrics", "push", "api response times", "--file", str(good))
    assert done.returncode == 0, done.stderr
    assert "Recorded 2 points" in done.stdout
    assert (tmp_path / "public" / "index.html").exists()  # the page was brought up to date

    done = statusbot(
        "metrics",
        "push",
        "API Response Times",
        "91",
        "--at",
        "2h ago",  # 18:00 in Sydney on NOW's day
        "--no-render",
    )
    assert done.returncode == 0, done.stderr

    before = dump(engine)
    bad = tmp_path / "bad.csv"
    bad.write_text("2026-06-10T08:10:00Z,80\n2026-06-10T08:15:00Z,oops\n")
    for args in (
        ("metrics", "push", "API Response Times", "--file", str(bad)),
        ("metrics", "push", "API Response Times", "--file", str(tmp_path / "missing.csv")),
        ("metrics", "push", "API Response Times"),
        ("metrics", "push", "API Response Times", "1", "--file", str(good)),
        ("metrics", "push", "Nope", "1"),
        ("metrics", "push", "API Response Times", "1", "--at", "tomorrow 9am"),
        ("metrics", "add", "api response times", "--unit", "ms"),
    ):
        failed = statusbot(*args)
        assert failed.returncode == 2, (args, failed.stdout, failed.stderr)
        assert "statusbot: " in failed.stderr
        assert "Traceback" not in failed.stderr
    assert dump(engine) == before
    assert (
        "bad.csv line 2: 'oops' is not a number."
        in statusbot("metrics", "push", "API Response Times", "--file", str(bad)).stderr
    )

    listed = statusbot("metrics", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == (
        "API Response Times (ms): 3 points, newest 84 ms at Jun 10, 18:05 AEST"
    )

    # A value without --at is measured now: NOW, not today.
    assert statusbot("metrics", "push", "API Response Times", "95", "--no-render").returncode == 0
    assert statusbot("metrics", "list").stdout.strip() == (
        "API Response Times (ms): 4 points, newest 95 ms at Jun 10, 20:00 AEST"
    )
    wrong = statusbot("metrics", "list", env={"STATUSBOT_NOW": "10 June"})
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "STATUSBOT_NOW='10 June' is not an ISO 8601 time with an offset" in wrong.stderr
