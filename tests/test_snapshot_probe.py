"""The snapshot cache's reads through the driver: several statements in one round trip,
rows converted as SQLAlchemy would have made them, and a build after one change that
makes only a few round trips."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, event, select, update
from sqlalchemy.orm import Session

from bot.runtime import Runtime
from commands import metrics as metric_commands
from storage import metrics as metric_store
from storage import postmortems as postmortem_store
from storage import snapshot_marks, snapshot_rows
from storage.db import transaction
from storage.models import Incident, Metric, StatusChange
from storage.rules import ComponentStatus
from storage.snapshot import postmortem_view
from storage.snapshot_marks import read_probe
from storage.snapshot_rows import (
    COMPONENT_COLUMNS,
    GROUP_COLUMNS,
    INCIDENT_COLUMNS,
    UPDATE_COLUMNS,
    ComponentRow,
    GroupRow,
    IncidentRow,
    UpdateRow,
    load_incidents,
    read_together,
    recent_history,
    window_start,
)
from tests.conftest import FakeClock
from tests.test_snapshot import PAGE, Check, run


def page(runtime: Runtime) -> None:
    run(
        runtime,
        "/component add API --start-date 2026-01-01",
        '/component add "Transactional emails" --group Email',
        "/component add Old",
        "/component remove Old",
        "/incident open API errors --components API=major -- Looking.",
        "/incident update 1 --status identified --components API=partial -- Found it.",
        "/incident open Slow mail --components Transactional emails=degraded -- Looking.",
        "/incident resolve 2 -- Fixed.",
        "/incident postmortem 2 -- What happened.",
        "/incident postmortem 2 --publish",
    )


def test_several_statements_give_each_its_rows(engine: Engine) -> None:
    with Session(engine) as session:
        rows = read_together(session, ["SELECT 1", "SELECT 2, 'b' WHERE 1 = 0", "SELECT 3, 'c'"])
    assert rows == [[(1,)], [], [(3, "c")]]


def same(driver: list[Any], typed: list[Any]) -> None:
    """The same rows, value for value and type for type (a time's zone too)."""
    assert sorted(map(repr, driver)) == sorted(map(repr, typed))
    assert driver


def test_the_driver_rows_are_what_sqlalchemy_makes_of_them(
    runtime: Runtime, engine: Engine
) -> None:
    page(runtime)
    with Session(engine) as session:
        probe = read_probe(session, updates_above=None, history_above=None)
        same(
            probe.components,
            [ComponentRow(*r) for r in session.execute(select(*COMPONENT_COLUMNS))],
        )
        same(probe.groups, [GroupRow(*r) for r in session.execute(select(*GROUP_COLUMNS))])
        assert any(c.start_date is not None for c in probe.components)
        assert any(c.removed_at is not None for c in probe.components)

        ids = set(session.scalars(select(Incident.id)))
        loaded = load_incidents(session, ids, everything=False)
        assert loaded == load_incidents(session, ids, everything=True)
        same(
            [row for row, _, _, _ in loaded.values()],
            [IncidentRow(*r) for r in session.execute(select(*INCIDENT_COLUMNS))],
        )
        same(
            [u for _, updates, _, _ in loaded.values() for u, _ in updates],
            [UpdateRow(*r) for r in session.execute(select(*UPDATE_COLUMNS))],
        )
        assert any(changes for _, updates, _, _ in loaded.values() for _, changes in updates)
        shown = {iid: view for iid, (_, _, _, view) in loaded.items() if view is not None}
        written = postmortem_store.published(session)
        assert shown and repr(shown) == repr(
            {iid: postmortem_view(p) for iid, p in sorted(written.items())}
        )

        now = runtime.clock()
        since = window_start(now, ZoneInfo(PAGE.time_zone))
        history = recent_history(session, [c.id for c in probe.components], since=since)
        typed = session.execute(
            select(StatusChange.component_id, StatusChange.at, StatusChange.status)
            .where(StatusChange.at >= since)
            .order_by(StatusChange.at, StatusChange.id)
        ).all()
        assert typed
        for cid, (initial, changes) in history.items():
            assert initial == ComponentStatus.OPERATIONAL  # the page is younger than its window
            assert repr(changes) == repr(
                [(at, ComponentStatus(status)) for c, at, status in typed if c == cid]
            )


def test_the_probe_reads_what_came_above_the_marks(runtime: Runtime, engine: Engine) -> None:
    page(runtime)
    with Session(engine) as session:
        before = read_probe(session, updates_above=None, history_above=None)
        same_again = read_probe(
            session,
            updates_above=before.updates.highest,
            history_above=before.history.highest,
        )
    assert same_again.updates == before.updates and same_again.history == before.history
    assert same_again.updates_above == {} and same_again.history_above == {}
    run(runtime, "/incident update 1 --components API=operational -- Better.")
    with Session(engine) as session:
        after = read_probe(
            session, updates_above=before.updates.highest, history_above=before.history.highest
        )
        incident = session.scalar(select(Incident.id).where(Incident.number == 1))
        api = next(c.id for c in after.components if c.name == "API")
    assert after.updates_above is not None and set(after.updates_above) == {incident}
    assert after.updates_above[incident][0] == 1
    assert after.history_above == {api: 1}
    assert after.updates.grew_by(before.updates, 1, after.updates_above[incident][2])


def test_an_incident_edited_in_place_is_seen_though_its_update_time_stayed(
    runtime: Runtime, engine: Engine
) -> None:
    page(runtime)
    check = Check(runtime)
    check()
    with Session(engine) as session, session.begin():
        session.execute(update(Incident).where(Incident.number == 2).values(title="Slow emails"))
    assert check() == {2}
    with Session(engine) as session, session.begin():
        # Written, but to the same value: reread (on PostgreSQL), and nothing to show.
        session.execute(update(Incident).where(Incident.number == 1).values(title=Incident.title))
    assert check() == frozenset()


@contextmanager
def round_trips(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What a block sends the database: SQLAlchemy's statements and the driver reads."""
    sent: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if not sql.startswith("BEGIN"):  # SQLite's, sent with the first statement's
            sent.append(sql)

    real = read_together

    def together(session: Session, statements: list[str]) -> list[list[tuple[Any, ...]]]:
        sent.append(f"{len(statements)} together")
        return real(session, statements)

    for module in (snapshot_rows, snapshot_marks):
        monkeypatch.setattr(module, "read_together", together)
    event.listen(engine, "before_cursor_execute", statement)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", statement)


def test_a_build_after_one_change_makes_a_few_round_trips(
    runtime: Runtime, engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    page(runtime)
    check = Check(runtime)
    check()
    for line, most in (
        ("/incident update 1 -- Still on it.", 2),  # the probe, and the incident's rows
        ("/incident update 1 --components API=major -- Worse.", 3),  # and the API's history
        ("/component set API operational", 2),  # the probe and the history
    ):
        clock.advance(minutes=1)
        run(runtime, line)
        with Session(engine) as session, round_trips(engine, monkeypatch) as sent:
            check.cache.build(session, page=PAGE, now=runtime.clock())
        assert len(sent) <= most, (line, sent)
        assert check() == frozenset()  # and the build was right


def test_the_ids_in_the_probes_sql_are_literals(engine: Engine) -> None:
    dialect = engine.dialect
    for sql in (
        snapshot_marks._tally_sql(dialect, 41),
        snapshot_marks._history_sql(dialect, 42),
    ):
        assert " > 4" in sql and "?" not in sql and "%" not in sql


def test_charts_whose_oldest_buckets_leave_them_match_a_fresh_read(
    runtime: Runtime, clock: FakeClock
) -> None:
    with transaction(runtime.factory) as session:
        ctx = runtime.context("U1")
        metric_commands.add_metric(session, ctx, name="Latency", unit="ms")
        for n, at in enumerate(("29 days ago", "6 days ago", "23 hours ago", "2 hours ago")):
            metric_commands.push_value(session, ctx, name="Latency", value=str(n), at=at)
        metric_commands.push_value(session, ctx, name="Latency", value="9")
    check = Check(runtime)
    check()
    for step in (
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(hours=1),
        timedelta(hours=4),
        timedelta(hours=22),
        timedelta(days=5),
        -timedelta(days=2),  # a clock set back reads afresh
        timedelta(days=40),  # every bucket gone
    ):
        clock.advance(seconds=step.total_seconds())
        assert check() == frozenset(), step
        with transaction(runtime.factory) as session:
            metric_commands.push_value(session, runtime.context("U1"), name="Latency", value="7")
        assert check() == frozenset(), step
    with Session(runtime.engine) as session:
        build = check.cache.build(session, page=PAGE, now=runtime.clock())
    (metric,) = build.snapshot.metrics
    assert metric.series["month"]  # the points pushed since


@pytest.mark.parametrize("ahead", [timedelta(seconds=1), timedelta(hours=3)])
def test_a_point_stamped_after_the_builds_clock_reaches_the_charts_when_it_comes_due(
    runtime: Runtime, clock: FakeClock, ahead: timedelta
) -> None:
    # Written between a build's reading of the clock and its first query, or by a host
    # whose clock is ahead: seen by that build (its id), but not yet in a chart.
    with transaction(runtime.factory) as session:
        ctx = runtime.context("U1")
        metric_commands.add_metric(session, ctx, name="Latency", unit="ms")
        metric_commands.push_value(session, ctx, name="Latency", value="1")
    check = Check(runtime)
    check()
    with transaction(runtime.factory) as session:
        (metric,) = session.scalars(select(Metric))
        metric_store.add_points(session, metric, [(runtime.clock() + ahead, 100.0)])
    assert check() == frozenset()  # not shown yet, by either build
    for step in (timedelta(minutes=10), timedelta(hours=1), timedelta(hours=3)):
        clock.advance(seconds=step.total_seconds())
        check()  # the incremental charts agree with a fresh read at each step
    with Session(runtime.engine) as session:
        build = check.cache.build(session, page=PAGE, now=runtime.clock())
    (shown,) = build.snapshot.metrics
    assert any(value > 1.0 for _, value in shown.series["day"])  # due, and counted


def test_the_same_probe_again_and_again_on_one_connection(runtime: Runtime, engine: Engine) -> None:
    # psycopg prepares a statement run five times; several statements in one string
    # cannot be prepared, and must never be (a publish where nothing changed sends the
    # same string each time).
    page(runtime)
    with Session(engine) as session:
        first = read_probe(session, updates_above=None, history_above=None)
        for _ in range(12):
            again = read_probe(
                session, updates_above=first.updates.highest, history_above=first.history.highest
            )
            assert again.updates == first.updates and again.updates_above == {}
