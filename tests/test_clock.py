"""The scheduler's jobs, driven by an injected clock on both databases."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from bot.clock import Clockwork, make_scheduler
from bot.runtime import Runtime
from bot.settings import Settings
from storage import incidents, ratelimits
from storage.models import OutboxEntry, RateLimit
from tests.conftest import FakeClock
from tests.helpers import component_states, incident_of


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    for line in ["/component add API", "/component add Database"]:
        assert runtime.run_line(line, user="U1").ok
    assert runtime.run_line("/component set API degraded", user="U1").ok
    return runtime


def schedule(rt: Runtime, args: str = "--start in 2h --end in 4h") -> int:
    r = rt.run_line(f"/maintenance schedule Upgrade {args} --components API, Database", user="U1")
    assert r.ok, r.reply
    assert r.number is not None
    return r.number


def events(rt: Runtime) -> list[str]:
    with rt.factory() as s:
        return list(
            s.scalars(
                select(OutboxEntry.event)
                .where(OutboxEntry.kind == "slack")
                .order_by(OutboxEntry.id)
            )
        )


def test_maintenance_starts_and_completes_on_time(rt: Runtime, clock: FakeClock) -> None:
    number = schedule(rt)
    clockwork = Clockwork(rt)
    assert not clockwork.tick().anything
    clock.advance(hours=2)
    report = clockwork.tick()
    assert report.started == [number]
    m = incident_of(rt, number)
    assert m.status == "in_progress"
    assert m.updates[-1].author == "statusbot"
    assert m.updates[-1].display_at == clock.now
    assert "later than planned" not in m.updates[-1].body
    assert component_states(rt) == {"API": "under_maintenance", "Database": "under_maintenance"}

    assert not clockwork.tick().anything  # running twice does nothing more
    clock.advance(hours=2, seconds=1)
    assert clockwork.tick().completed == [number]
    assert incident_of(rt, number).status == "completed"
    assert component_states(rt) == {"API": "degraded_performance", "Database": "operational"}
    assert events(rt)[-2:] == ["maintenance.started", "maintenance.completed"]


def test_no_auto_is_left_alone(rt: Runtime, clock: FakeClock) -> None:
    number = schedule(rt, "--start in 1h --end in 2h --no-auto")
    clock.advance(hours=3)
    assert not Clockwork(rt).tick().anything
    assert incident_of(rt, number).status == "scheduled"


def test_catch_up_after_the_clock_was_down_for_the_start(rt: Runtime, clock: FakeClock) -> None:
    number = schedule(rt)
    clock.advance(hours=2, minutes=10)  # nothing ran across the start
    assert Clockwork(rt).tick().started == [number]
    m = incident_of(rt, number)
    assert m.status == "in_progress"
    assert "later than planned" in m.updates[-1].body
    assert m.updates[-1].display_at == clock.now  # the history says when it really started


def test_a_window_that_passed_entirely_starts_and_completes_honestly(
    rt: Runtime, clock: FakeClock
) -> None:
    number = schedule(rt)
    clock.advance(hours=5)
    report = Clockwork(rt).tick()
    assert report.started == [number] and report.completed == [number]
    m = incident_of(rt, number)
    assert [u.status for u in m.updates] == ["scheduled", "in_progress", "completed"]
    assert "statusbot was not running then" in m.updates[-1].body
    assert component_states(rt) == {"API": "degraded_performance", "Database": "operational"}


def test_the_notice_goes_out_once(rt: Runtime, clock: FakeClock) -> None:
    number = schedule(rt)  # starts in 2h; notice is 60 min by default
    clockwork = Clockwork(rt)
    clock.advance(minutes=30)
    assert not clockwork.tick().noticed
    clock.advance(minutes=31)
    assert clockwork.tick().noticed == [number]
    clock.advance(minutes=5)
    assert not clockwork.tick().noticed
    assert events(rt).count("maintenance.notice") == 1


def test_a_quiet_incident_is_nudged_once_per_period_and_not_forever(
    rt: Runtime, clock: FakeClock
) -> None:
    assert rt.run_line("/incident open Quiet one -- Looking.", user="U1").ok
    clockwork = Clockwork(rt)
    clock.advance(minutes=29)
    assert not clockwork.tick().nudged
    clock.advance(minutes=2)
    assert clockwork.tick().nudged == [1]
    clock.advance(minutes=10)
    assert not clockwork.tick().nudged  # once per period
    for _ in range(5):
        clock.advance(minutes=31)
        clockwork.tick()
    assert events(rt).count("incident.stale") == 3  # then it stops
    # An update starts a new quiet spell.
    assert rt.run_line("/incident update 1 -- Still looking.", user="U1").ok
    clock.advance(minutes=31)
    assert clockwork.tick().nudged == [1]
    assert rt.run_line("/incident resolve 1", user="U1").ok
    clock.advance(hours=2)
    assert not clockwork.tick().nudged


def test_two_clocks_racing_make_one_transition(
    engine: Engine, clock: FakeClock, settings: Settings
) -> None:
    a = Runtime(settings, engine=engine, clock=clock)
    b = Runtime(settings, engine=engine, clock=clock)  # a second process's view
    assert a.run_line("/component add API", user="U1").ok
    number = schedule_on(a)
    clock.advance(hours=2)
    barrier = threading.Barrier(2)
    reports = []

    def run(rt: Runtime) -> None:
        barrier.wait()
        reports.append(Clockwork(rt).tick())

    threads = [threading.Thread(target=run, args=(rt,)) for rt in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r.started) for r in reports) == [0, 1]
    with a.factory() as s:
        m = incidents.get(s, number=number)
        assert m is not None and [u.status for u in m.updates] == ["scheduled", "in_progress"]
        started = s.scalar(
            select(func.count())
            .select_from(OutboxEntry)
            .where(OutboxEntry.event == "maintenance.started", OutboxEntry.kind == "slack")
        )
    assert started == 1


def schedule_on(rt: Runtime) -> int:
    r = rt.run_line(
        "/maintenance schedule Race --start in 1h --end in 3h --components API", user="U1"
    )
    assert r.ok and r.number is not None, r.reply
    return r.number


def test_the_scheduler_has_the_tick_and_the_midnight_render(rt: Runtime) -> None:
    calls: list[str] = []
    scheduler = make_scheduler(
        Clockwork(rt, republish=lambda: calls.append("render")), blocking=False
    )
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"tick", "midnight"}
    assert jobs["tick"].trigger.interval == timedelta(seconds=1)
    assert str(jobs["midnight"].trigger.timezone) == "Australia/Sydney"
    jobs["midnight"].func()
    assert calls == ["render"]


def test_midnight_purges_notifications_delivered_more_than_30_days_ago(
    rt: Runtime, clock: FakeClock
) -> None:
    assert rt.run_line("/incident open API errors -- Looking.", user="U1").ok
    assert rt.run_line("/incident update 1 -- Found it.", user="U1").ok
    assert rt.run_line("/incident resolve 1 -- Fixed.", user="U1").ok
    with rt.factory() as s, s.begin():
        old, recent, failed, *waiting = s.scalars(select(OutboxEntry).order_by(OutboxEntry.id))
        old.delivered_at = clock.now - timedelta(days=31)
        recent.delivered_at = clock.now - timedelta(days=29)
        failed.failed_at = clock.now - timedelta(days=40)
        kept = [recent.id, failed.id, *(e.id for e in waiting)]
    Clockwork(rt, republish=lambda: None).midnight()
    with rt.factory() as s:
        assert list(s.scalars(select(OutboxEntry.id).order_by(OutboxEntry.id))) == kept


def test_midnight_forgets_rate_limit_counts_older_than_a_day(rt: Runtime, clock: FakeClock) -> None:
    with rt.factory.begin() as s:
        ratelimits.hit(
            s, key="old", window=timedelta(minutes=10), now=clock.now - timedelta(days=2)
        )
        ratelimits.hit(s, key="new", window=timedelta(minutes=10), now=clock.now)
    Clockwork(rt, republish=lambda: None).midnight()
    with rt.factory() as s:
        assert list(s.scalars(select(RateLimit.key))) == ["new"]
