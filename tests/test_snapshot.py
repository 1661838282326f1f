"""The snapshot: what it holds, and an incremental rebuild that matches a full one."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from bot.runtime import Runtime
from commands import metrics as metric_commands
from storage.db import transaction
from storage.models import IncidentUpdate
from storage.snapshot import GroupView, PageInfo, Snapshot, build_snapshot, page_id
from storage.snapshot_cache import SnapshotCache
from tests.conftest import T0, FakeClock

PAGE = PageInfo(
    id=page_id("https://status.example.com"),
    name="Example",
    url="https://status.example.com",
    time_zone="Australia/Sydney",
)


def run(runtime: Runtime, *lines: str, user: str = "U1") -> None:
    for line in lines:
        result = runtime.run_line(line, user=user)
        assert result.ok, (line, result.reply)


def snapshot(runtime: Runtime) -> Snapshot:
    with Session(runtime.engine) as session:
        return build_snapshot(session, page=PAGE, now=runtime.clock())


def test_page_id_is_stable_and_statuspage_shaped() -> None:
    first = page_id("https://status.example.com")
    assert first == page_id("https://status.example.com/")
    assert first == page_id("HTTPS://Status.Example.com")
    assert first != page_id("https://status.other.example")
    assert re.fullmatch(r"[a-z2-7]{12}", first)


def test_groups_layout_and_status(runtime: Runtime) -> None:
    run(
        runtime,
        "/component add API --description Our REST API",
        '/component add "Transactional emails" --group "Email Processing"',
        '/component add "Newsletter emails" --group "Email Processing" --no-showcase',
        "/component add Website",
        "/component set Newsletter emails partial",
    )
    snap = snapshot(runtime)
    assert [c.name for c in snap.components] == [
        "API",
        "Transactional emails",
        "Newsletter emails",
        "Website",
    ]
    assert [type(item).__name__ for item in snap.layout] == [
        "ComponentView",
        "GroupView",
        "ComponentView",
    ]
    group = snap.layout[1]
    assert isinstance(group, GroupView)
    assert group.name == "Email Processing"
    assert group.status == "partial_outage"  # the worst of its members
    assert [c.name for c in group.components] == ["Transactional emails", "Newsletter emails"]
    assert all(c.group_code == group.code for c in group.components)
    assert snap.groups == (group,)
    api = snap.components[0]
    assert api.description == "Our REST API" and api.group_code is None
    assert len(api.uptime_days) == 90
    newsletter = snap.components[2]
    assert newsletter.showcase is False and newsletter.uptime_days == ()
    assert snap.status.description == "Minor Service Outage"
    assert snap.page == PAGE and snap.generated_at == T0


def test_uptime_of_a_showcased_component_comes_from_its_history(
    runtime: Runtime, clock: FakeClock
) -> None:
    clock.now = T0 - timedelta(hours=30)
    run(runtime, "/component add API --start-date 2026-01-01")
    # Jun 9, 18:00 to 20:00 AEST (08:00 to 10:00 UTC): two hours of major outage.
    clock.now = T0 - timedelta(hours=26)
    run(runtime, "/component set API major")
    clock.now = T0 - timedelta(hours=24)
    run(runtime, "/component set API ok")
    clock.now = T0  # Jun 10, 20:00 AEST
    api = snapshot(runtime).components[0]

    days = {d.day: d for d in api.uptime_days}
    assert api.uptime_days[-1].day == date(2026, 6, 10)
    outage = days[date(2026, 6, 9)]
    assert outage.outage_minutes == 120 and outage.major_minutes == 120
    assert outage.worst == "major_outage"
    assert outage.uptime == pytest.approx(1 - 7200 / 86400)
    assert days[date(2026, 6, 8)].uptime == 1.0
    # 89 whole days and today's 20 hours, all with data (the start date is long past).
    assert api.uptime == pytest.approx(1 - 7200 / (89 * 86400 + 20 * 3600))


def test_days_before_the_start_date_have_no_data(runtime: Runtime) -> None:
    run(runtime, "/component add API --start-date 2026-06-08")
    days = snapshot(runtime).components[0].uptime_days
    assert [d.uptime for d in days[-4:]] == [None, 1.0, 1.0, 1.0]


def test_bars_name_the_incidents_of_their_day(runtime: Runtime, clock: FakeClock) -> None:
    run(runtime, "/component add API --start-date 2026-01-01")
    clock.now = T0 - timedelta(days=2)
    run(runtime, "/incident open Errors --components API=partial -- Looking.")
    clock.now = T0 - timedelta(days=2) + timedelta(hours=1)
    run(runtime, "/incident resolve 1")
    clock.now = T0
    days = {d.day: d for d in snapshot(runtime).components[0].uptime_days}
    assert [(r.number, r.title) for r in days[date(2026, 6, 8)].incidents] == [(1, "Errors")]
    assert days[date(2026, 6, 8)].partial_minutes == 60
    assert days[date(2026, 6, 9)].incidents == ()


def test_unresolved_incidents_and_maintenances(runtime: Runtime, clock: FakeClock) -> None:
    run(
        runtime,
        "/component add API",
        "/incident open Old trouble -- Looking.",
        "/incident resolve 1",
    )
    clock.advance(minutes=5)
    run(
        runtime,
        "/incident open Slow pages --impact minor -- Looking.",
        "/maintenance schedule Upgrade --start tomorrow 22:00 --end tomorrow 23:00 "
        "--components API",
    )
    snap = snapshot(runtime)
    assert [i.number for i in snap.incidents] == [2, 1]  # newest first
    assert [i.number for i in snap.unresolved_incidents] == [2]
    assert [m.number for m in snap.upcoming_maintenances] == [3]
    assert snap.active_maintenances == ()
    assert snap.status.description != "All Systems Operational"
    two = snap.incidents[0]
    assert [u.status for u in two.updates] == ["investigating"]
    assert snap.incidents[1].closed and not two.closed


def test_metrics_are_in_the_snapshot(runtime: Runtime) -> None:
    with transaction(runtime.factory) as session:
        ctx = runtime.context("U1")
        metric_commands.add_metric(session, ctx, name="API Response Times", unit="ms")
        metric_commands.push_value(session, ctx, name="API Response Times", value="80")
    (metric,) = snapshot(runtime).metrics
    assert (metric.name, metric.unit) == ("API Response Times", "ms")
    assert metric.series["day"] == ((T0, 80.0),)
    assert set(metric.series) == {"day", "week", "month"}


# --- Incremental rebuilds ----------------------------------------------------------------------


def insert_late_update(
    session: Session, like: IncidentUpdate, *, id: int, incident_id: int, code: str
) -> None:
    """An update with id `id`, at `like`'s times, as a slower transaction commits it
    below the highest id."""
    session.execute(
        insert(IncidentUpdate).values(
            id=id,
            code=code,
            incident_id=incident_id,
            status="identified",
            body="Committed late.",
            author="U1",
            display_at=like.display_at,
            created_at=like.created_at,
            updated_at=like.updated_at,
        )
    )


class Check:
    """Builds through one cache and from scratch, and insists they agree."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.cache = SnapshotCache()

    def __call__(self, dirty: frozenset[int] = frozenset()) -> frozenset[int]:
        now = self.runtime.clock()
        with Session(self.runtime.engine) as session:
            build = self.cache.build(session, page=PAGE, now=now, dirty=dirty)
        with Session(self.runtime.engine) as session:
            full = build_snapshot(session, page=PAGE, now=now)
        assert build.snapshot == full
        return build.changed


def test_incremental_builds_match_full_builds_and_name_what_changed(
    runtime: Runtime, clock: FakeClock, engine: Engine
) -> None:
    check = Check(runtime)
    run(
        runtime,
        "/component add API --start-date 2026-01-01",
        '/component add "Transactional emails" --group Email',
        "/incident open API errors --components API=major -- Looking.",
        "/incident open Slow mail --components Transactional emails=degraded -- Looking.",
    )
    first = check.cache
    assert check() == {1, 2}
    assert check() == frozenset()  # nothing happened

    steps: list[tuple[str, set[int]]] = [
        ("/incident update 1 --status identified -- Found it.", {1}),
        ("/incident open Third -- Hm.", {3}),
        ("/incident edit 2 --title Slow emails", {2}),
        ("/incident edit 2 --update 1 -- Looking closely.", {2}),
        # Both incidents show the component's name and status: both pages change.
        ('/component rename "Transactional emails" --to "Mail"', {2}),
        ("/component set API partial", {1}),
        ("/incident resolve 1 -- Fixed.", {1}),
        (
            "/maintenance schedule Upgrade --start tomorrow 22:00 --end tomorrow 23:00 "
            "--components API",
            {4},
        ),
        ("/maintenance start 4", {1, 4}),  # API goes under maintenance: #1 shows it
        ("/component add Website", set()),
    ]
    for line, changed in steps:
        clock.advance(minutes=7)
        run(runtime, line)
        assert check() == changed, line
    assert check.cache is first

    with transaction(runtime.factory) as session:
        ctx = runtime.context("U1")
        metric_commands.add_metric(session, ctx, name="Latency", unit="ms")
        metric_commands.push_value(session, ctx, name="Latency", value="80")
    assert check() == frozenset()
    clock.advance(minutes=1)
    with transaction(runtime.factory) as session:
        metric_commands.push_value(session, runtime.context("U1"), name="Latency", value="90")
    assert check() == frozenset()
    # A backfill deep in the past: the charts reread from its bucket on, and still match.
    for at, value in (("3 days ago", "70"), ("20 hours ago", "75"), ("now", "95")):
        with transaction(runtime.factory) as session:
            ctx = runtime.context("U1")
            metric_commands.push_value(session, ctx, name="Latency", value=value, at=at)
        assert check() == frozenset()

    # A day later the strip has moved on by one day, and still matches.
    clock.advance(days=1)
    assert check() == frozenset()
    clock.advance(hours=5)
    run(runtime, "/component set API major")
    assert check() == {1, 4}


def test_a_change_at_the_same_instant_is_found_through_the_dirty_hint(
    runtime: Runtime,
) -> None:
    check = Check(runtime)
    run(runtime, "/incident open Errors -- Looking.")
    assert check() == {1}
    # The clock has not moved: the incident's update time is the same as before.
    run(runtime, "/incident edit 1 --update 1 -- Looking harder.")
    assert check(dirty=frozenset({1})) == {1}


def test_a_change_of_page_rebuilds_everything(runtime: Runtime) -> None:
    run(runtime, "/incident open Errors -- Looking.")
    cache = SnapshotCache()
    with Session(runtime.engine) as session:
        assert cache.build(session, page=PAGE, now=T0).full
        assert not cache.build(session, page=PAGE, now=T0).full
        other = PageInfo(id=PAGE.id, name=PAGE.name, url=PAGE.url, time_zone="UTC")
        build = cache.build(session, page=other, now=T0)
    assert build.full and build.changed == {1}


def test_a_deleted_incident_is_reported_removed(runtime: Runtime, engine: Engine) -> None:
    from sqlalchemy import delete

    from storage.models import Incident, IncidentUpdate, OutboxEntry

    run(runtime, "/incident open Errors -- Looking.", "/incident open Other -- Hm.")
    cache = SnapshotCache()
    with Session(engine) as session:
        cache.build(session, page=PAGE, now=T0)
    with Session(engine) as session, session.begin():
        session.execute(delete(OutboxEntry))
        session.execute(delete(IncidentUpdate).where(IncidentUpdate.incident_id == 2))
        session.execute(delete(Incident).where(Incident.number == 2))
    with Session(engine) as session:
        build = cache.build(session, page=PAGE, now=T0)
    assert build.removed == {2} and build.changed == frozenset()
    assert [i.number for i in build.snapshot.incidents] == [1]


def test_full_snapshot_equals_the_demo_we_know(runtime: Runtime) -> None:
    from bot.demo import load_demo

    load_demo(runtime)
    snap = snapshot(runtime)
    assert [i.title for i in snap.incidents] == ["Delays in segment calculation"]
    assert [m.title for m in snap.maintenances] == ["Database maintenance and capacity upgrades"]
    assert [u.status for u in snap.maintenances[0].updates] == [
        "completed",
        "verifying",
        "in_progress",
        "scheduled",
    ]
    (metric,) = snap.metrics
    assert metric.name == "API Response Times" and metric.unit == "ms"
    assert len(metric.series["day"]) == 288
    assert len(metric.series["week"]) == 168
    assert len(metric.series["month"]) == 180
    assert snap.status.description == "All Systems Operational"
    assert snap.generated_at == datetime(2026, 6, 10, 10, 0, tzinfo=UTC)


def test_updates_and_history_rows_found_when_deleted_or_committed_below_the_newest(
    runtime: Runtime, engine: Engine
) -> None:
    # The cache reads only the rows above the highest id it saw, unless the counts (and the
    # updates' sum of ids) say rows went or arrived below it, as a slower transaction's do.
    from sqlalchemy import delete, func, insert, select

    from storage.models import ComponentChange, IncidentUpdate, OutboxEntry, StatusChange

    run(
        runtime,
        "/component add API",
        "/incident open Errors --components API=major -- Looking.",
        "/incident update 1 -- Still looking.",
        "/incident open Other -- Hm.",
        "/component set API partial",
    )
    check = Check(runtime)
    check()
    with Session(engine) as session, session.begin():
        top = session.scalar(select(func.max(IncidentUpdate.id)))
        gap = session.scalar(
            select(IncidentUpdate.id)
            .where(IncidentUpdate.incident_id == 1)
            .order_by(IncidentUpdate.id.desc())
        )
        session.execute(delete(OutboxEntry))
        session.execute(delete(ComponentChange).where(ComponentChange.update_id == gap))
        session.execute(delete(IncidentUpdate).where(IncidentUpdate.id == gap))
        first = session.scalar(select(func.min(StatusChange.id)))
        gone = session.get(StatusChange, first)
        assert gone is not None
        session.delete(gone)
    assert gap is not None and top is not None and gap < top
    assert check() == {1}  # the clock has not moved: only the counts tell
    with Session(engine) as session, session.begin():
        row = session.get(IncidentUpdate, top)
        assert row is not None
        insert_late_update(session, row, id=gap, incident_id=1, code="latecommit01")
        session.execute(
            insert(StatusChange).values(
                id=first,
                component_id=gone.component_id,
                at=gone.at,
                old_status=gone.old_status,
                status=gone.status,
                cause=gone.cause,
                actor=gone.actor,
            )
        )
    assert check() == {1}


def test_an_incident_deleted_as_another_is_opened_is_found(
    runtime: Runtime, engine: Engine, clock: FakeClock
) -> None:
    # As many incidents as before: the rows between the two have shifted, and are reread.
    from sqlalchemy import delete

    from storage.models import Incident, IncidentUpdate, OutboxEntry

    run(runtime, *(f"/incident open Errors {n} -- Looking." for n in range(1, 5)))
    check = Check(runtime)
    assert check() == {1, 2, 3, 4}
    with Session(engine) as session, session.begin():
        session.execute(delete(OutboxEntry))
        session.execute(delete(IncidentUpdate).where(IncidentUpdate.incident_id == 2))
        session.execute(delete(Incident).where(Incident.number == 2))
    clock.advance(minutes=1)
    run(runtime, "/incident open Errors 5 -- Looking.", "/incident update 4 -- More.")
    now = clock()
    with Session(engine) as session:
        build = check.cache.build(session, page=PAGE, now=now)
    with Session(engine) as session:
        assert build.snapshot == build_snapshot(session, page=PAGE, now=now)
    assert build.removed == {2} and build.changed == {4, 5}
