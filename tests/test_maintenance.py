"""Maintenance windows through the text grammar: schedule, update, start, complete, cancel."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.runtime import Runtime
from tests.conftest import FakeClock
from tests.helpers import component_states, incident_of


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    for line in ["/component add API", "/component add Database", "/component add Web"]:
        assert runtime.run_line(line, user="U1").ok
    return runtime


def test_schedule_start_verify_complete(rt: Runtime, clock: FakeClock) -> None:
    r = rt.run_line(
        "/maintenance schedule Database upgrade --start in 2h --end in 4h "
        "--components Database, API -- We will upgrade the database.",
        user="U1",
    )
    assert r.ok, r.reply
    m = incident_of(rt, 1)
    assert (m.kind, m.status, m.impact, m.auto) == ("maintenance", "scheduled", "maintenance", True)
    assert m.scheduled_for == clock.now + timedelta(hours=2)
    assert m.scheduled_until == clock.now + timedelta(hours=4)
    assert sorted(a.component.name for a in m.affected) == ["API", "Database"]
    assert component_states(rt)["Database"] == "operational"  # nothing moves before it starts
    assert [n.event for n in r.notices] == ["maintenance.scheduled"]

    assert rt.run_line("/component set API degraded", user="U1").ok
    clock.advance(hours=2)
    r = rt.run_line("/maintenance start 1", user="U1")
    assert r.ok, r.reply
    assert component_states(rt) == {
        "API": "under_maintenance",
        "Database": "under_maintenance",
        "Web": "operational",
    }
    assert (
        incident_of(rt, 1)
        .updates[-1]
        .body.startswith("Scheduled maintenance is currently in progress")
    )

    r = rt.run_line("/maintenance update 1 --status verifying -- Checking.", user="U1")
    assert r.ok, r.reply
    clock.advance(hours=1)
    r = rt.run_line("/maintenance complete #1 -- All done.", user="U1")
    assert r.ok, r.reply
    m = incident_of(rt, 1)
    assert m.status == "completed" and m.resolved_at == clock.now
    # Back to the states they had when it started.
    assert component_states(rt) == {
        "API": "degraded_performance",
        "Database": "operational",
        "Web": "operational",
    }
    assert [u.status for u in m.updates] == ["scheduled", "in_progress", "verifying", "completed"]


def test_no_auto_and_cancel(rt: Runtime) -> None:
    r = rt.run_line(
        "/maintenance schedule Manual window --start tomorrow 22:00 --end tomorrow 23:00 --no-auto",
        user="U1",
    )
    assert r.ok, r.reply
    assert incident_of(rt, 1).auto is False
    assert "by hand" in r.reply
    r = rt.run_line("/maintenance cancel 1 -- Not needed after all.", user="U1")
    assert r.ok, r.reply
    assert incident_of(rt, 1).status == "cancelled"
    assert not rt.run_line("/maintenance start 1", user="U1").ok


def test_an_incident_during_maintenance_keeps_its_hold(rt: Runtime) -> None:
    assert rt.run_line(
        "/maintenance schedule W --start in 1h --end in 3h --components API", user="U1"
    ).ok
    assert rt.run_line("/maintenance start 1", user="U1").ok
    assert rt.run_line("/incident open Broken --components Web=major", user="U1").ok
    assert rt.run_line("/incident resolve 2", user="U1").ok
    assert component_states(rt)["API"] == "under_maintenance"  # the maintenance still holds it
    assert rt.run_line("/maintenance complete 1", user="U1").ok
    assert component_states(rt)["API"] == "operational"


def test_an_incident_resolved_during_maintenance_is_not_brought_back(rt: Runtime) -> None:
    assert rt.run_line("/incident open Down --components API=major", user="U1").ok
    assert rt.run_line(
        "/maintenance schedule W --start in 1h --end in 3h --components API", user="U1"
    ).ok
    assert rt.run_line("/maintenance start 2", user="U1").ok
    assert rt.run_line("/incident resolve 1", user="U1").ok
    assert component_states(rt)["API"] == "under_maintenance"
    assert rt.run_line("/maintenance complete 2", user="U1").ok
    assert (
        component_states(rt)["API"] == "operational"
    )  # not the major outage of the closed incident


def test_an_incident_still_open_after_maintenance_keeps_its_state(rt: Runtime) -> None:
    assert rt.run_line("/incident open Down --components API=partial", user="U1").ok
    assert rt.run_line(
        "/maintenance schedule W --start in 1h --end in 3h --components API", user="U1"
    ).ok
    assert rt.run_line("/maintenance start 2", user="U1").ok
    assert rt.run_line("/maintenance complete 2", user="U1").ok
    assert component_states(rt)["API"] == "partial_outage"


def test_numbers_are_shared_with_incidents(rt: Runtime) -> None:
    assert rt.run_line("/incident open A", user="U1").ok
    r = rt.run_line("/maintenance schedule B --start in 1h --end in 2h", user="U1")
    assert r.number == 2
    assert rt.run_line("/incident open C", user="U1").number == 3


def test_list_and_show(rt: Runtime) -> None:
    assert rt.run_line(
        "/maintenance schedule Upgrade --start in 1h --end in 2h --components API -- Soon.",
        user="U1",
    ).ok
    listing = rt.run_line("/maintenance list", user="U2").reply
    assert "#1 Upgrade" in listing and "Scheduled" in listing
    shown = rt.run_line("/maintenance show 1", user="U2").reply
    assert "Soon." in shown and "API" in shown
    status = rt.run_line("/status", user="U2").reply
    assert "Upcoming maintenance" in status and "#1 Upgrade" in status
