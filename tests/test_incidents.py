"""Incidents through the text grammar: open, update, resolve, reopen, edit, list, show."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, inspect, select

from bot.runtime import Runtime
from commands import incident as uc
from storage import incidents
from storage.models import AuditEvent, Component, IncidentUpdate, OutboxEntry, StatusChange
from tests.conftest import FakeClock
from tests.helpers import incident_of


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    for line in [
        "/component add API --description Our REST API",
        '/component add "Transactional emails" --group "Email Processing"',
        '/component add "Newsletter emails" --group "Email Processing"',
    ]:
        assert runtime.run_line(line, user="U1").ok
    return runtime


def status_of(rt: Runtime, name: str) -> str:
    with rt.factory() as s:
        return s.scalars(select(Component.status).where(Component.name == name)).one()


def test_open_update_resolve(rt: Runtime, clock: FakeClock) -> None:
    r = rt.run_line(
        "/incident open API errors --components API=major, Newsletter emails=degraded "
        "-- We are investigating failed requests.",
        user="U1",
    )
    assert r.ok, r.reply
    assert r.number == 1
    assert "Opened incident #1" in r.reply
    assert [n.event for n in r.notices] == ["incident.opened"]
    assert status_of(rt, "API") == "major_outage"
    assert status_of(rt, "Newsletter emails") == "degraded_performance"
    inc = incident_of(rt, 1)
    assert inc.impact == "critical"  # derived from the worst state
    assert inc.status == "investigating"
    assert [u.body for u in inc.updates] == ["We are investigating failed requests."]

    clock.advance(minutes=20)
    r = rt.run_line(
        "/incident update #1 --status identified --components API=partial -- A bad deploy.",
        user="U2",
    )
    assert r.ok, r.reply
    inc = incident_of(rt, 1)
    assert inc.status == "identified"
    assert inc.impact == "major"
    assert status_of(rt, "API") == "partial_outage"
    change = inc.updates[-1].changes[0]
    assert (change.old_status, change.new_status) == ("major_outage", "partial_outage")

    clock.advance(minutes=5)
    assert rt.run_line("/incident update 1 --status monitoring -- Fix is out.", user="U2").ok
    assert incident_of(rt, 1).monitoring_at == clock.now

    clock.advance(minutes=30)
    r = rt.run_line("/incident resolve 1", user="U1")
    assert r.ok, r.reply
    inc = incident_of(rt, 1)
    assert inc.status == "resolved"
    assert inc.resolved_at == clock.now
    assert inc.updates[-1].body == "This incident has been resolved."
    assert status_of(rt, "API") == "operational"
    assert status_of(rt, "Newsletter emails") == "operational"
    assert [n.event for n in r.notices] == ["incident.resolved"]

    with rt.factory() as s:
        events = [
            e.event
            for e in s.scalars(
                select(OutboxEntry).where(OutboxEntry.kind == "slack").order_by(OutboxEntry.id)
            )
        ]
        assert events == [
            "incident.opened",
            "incident.updated",
            "incident.updated",
            "incident.resolved",
        ]
        actions = [a.action for a in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        assert actions[-4:] == [
            "incident.open",
            "incident.update",
            "incident.update",
            "incident.resolve",
        ]
        history = s.scalars(
            select(StatusChange)
            .join(Component)
            .where(Component.name == "API")
            .order_by(StatusChange.id)
        ).all()
        assert [(h.status, h.cause) for h in history] == [
            ("major_outage", "incident"),
            ("partial_outage", "incident"),
            ("operational", "incident"),
        ]


def test_resolve_keeps_components_another_incident_holds(rt: Runtime) -> None:
    assert rt.run_line("/incident open One --components API=major", user="U1").ok
    assert rt.run_line("/incident open Two --components API=partial", user="U1").ok
    assert rt.run_line("/incident resolve 2", user="U1").ok
    assert status_of(rt, "API") == "major_outage"  # #1 still holds it down
    assert rt.run_line("/incident resolve 1", user="U1").ok
    assert status_of(rt, "API") == "operational"


def test_impact_given_by_hand_sticks(rt: Runtime) -> None:
    assert rt.run_line("/incident open Slow --impact minor --components API=major", user="U1").ok
    assert incident_of(rt, 1).impact == "minor"
    assert rt.run_line("/incident update 1 --components API=partial -- Better.", user="U1").ok
    assert incident_of(rt, 1).impact == "minor"


def test_backfill_with_at(rt: Runtime, clock: FakeClock) -> None:
    r = rt.run_line("/incident open Earlier outage --at 2h ago -- It began then.", user="U1")
    assert r.ok, r.reply
    inc = incident_of(rt, 1)
    assert inc.started_at == clock.now - timedelta(hours=2)
    assert inc.updates[0].display_at == clock.now - timedelta(hours=2)
    assert inc.created_at == clock.now


def test_reopen_returns_to_status_before_resolution(rt: Runtime) -> None:
    assert rt.run_line("/incident open X --status identified", user="U1").ok
    assert rt.run_line("/incident resolve 1 -- Done.", user="U1").ok
    r = rt.run_line("/incident reopen 1 -- It is back.", user="U1")
    assert r.ok, r.reply
    inc = incident_of(rt, 1)
    assert inc.status == "identified"
    assert inc.resolved_at is None
    assert rt.run_line("/incident update 1 -- Still on it.", user="U1").ok


def test_edit_title_and_update_are_audited(rt: Runtime) -> None:
    assert rt.run_line("/incident open Tpyo in title -- Frist update", user="U1").ok
    assert rt.run_line("/incident edit 1 --title Typo in title", user="U1").ok
    assert rt.run_line("/incident edit 1 --update 1 -- First update", user="U1").ok
    inc = incident_of(rt, 1)
    assert inc.title == "Typo in title"
    assert inc.updates[0].body == "First update"
    with rt.factory() as s:
        edits = s.scalars(
            select(AuditEvent)
            .where(AuditEvent.action.like("incident.edit%"))
            .order_by(AuditEvent.id)
        ).all()
    assert edits[0].before is not None and edits[0].before["title"] == "Tpyo in title"
    assert edits[0].after is not None and edits[0].after["title"] == "Typo in title"
    assert edits[1].before == {"update": 1, "body": "Frist update"}


def test_list_and_show(rt: Runtime) -> None:
    assert rt.run_line("/incident open Open one --components API=major -- Hi", user="U1").ok
    assert rt.run_line("/incident open Closed one", user="U1").ok
    assert rt.run_line("/incident resolve 2", user="U1").ok
    listing = rt.run_line("/incident list", user="U9").reply
    assert "#1 Open one" in listing
    assert "Recently closed" in listing and "#2 Closed one" in listing
    shown = rt.run_line("/incident show #1", user="U9").reply
    assert "API: Operational → Major Outage" in shown
    assert "Hi" in shown
    assert "https://status.example.com/incidents/1.html" in shown


def test_slack_escaping_and_curly_quotes(rt: Runtime) -> None:
    r = rt.run_line(
        "/incident open “Search &amp; filters” broken --components “Transactional emails”=down "
        "-- Seen by <@U123|alice> in <#C42|support> &lt;b&gt;",
        user="U1",
    )
    assert r.ok, r.reply
    inc = incident_of(rt, 1)
    assert inc.title == "Search & filters broken"
    assert inc.updates[0].body == "Seen by @alice in #support <b>"
    assert status_of(rt, "Transactional emails") == "major_outage"


def test_group_slash_name(rt: Runtime) -> None:
    r = rt.run_line(
        "/incident open Mail --components email processing/newsletter emails=partial", user="U1"
    )
    assert r.ok, r.reply
    assert status_of(rt, "Newsletter emails") == "partial_outage"


def test_help_for_every_command(rt: Runtime) -> None:
    for command in ("/incident", "/maintenance", "/component", "/status"):
        reply = rt.run_line(f"{command} help", user="U1")
        assert reply.ok
        assert command in reply.reply


# --- what an update reads (issue 13's ack target) ---


def test_an_update_settles_on_the_claims_of_every_earlier_update(rt: Runtime) -> None:
    """Updates read without their history derive the impact as the full read does: the
    last state each update set, the resolved ones left out."""
    lines = [
        "/incident open Mail --components API=degraded, Newsletter emails=major -- Looking.",
        "/incident update 1 --components Newsletter emails=partial -- Better.",
        "/incident update 1 --components Transactional emails=degraded -- Spreading.",
        "/incident resolve 1 -- Fixed.",
        "/incident reopen 1 -- Back.",
    ]
    for line in lines:
        assert rt.run_line(line, user="U1").ok, line
    assert rt.run_line("/incident update 1 --status identified -- Found it.", user="U1").ok
    full = incident_of(rt, 1)
    # Newsletter's later partial outage wins over its major one; the resolve's changes
    # (back to operational) claim nothing.
    assert full.impact == "major"
    with rt.factory() as session:
        light = incidents.get(session, number=1, for_update=True, updates=False)
        assert light is not None
        assert incidents.claimed_states(light, session=session) == incidents.claimed_states(full)


@contextmanager
def statements(rt: Runtime) -> Iterator[list[str]]:
    """The SQL the runtime's engine sends while the block runs."""
    sent: list[str] = []

    def note(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        sent.append(sql)

    event.listen(rt.engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(rt.engine, "before_cursor_execute", note)


def test_update_and_resolve_leave_the_earlier_updates_unread(rt: Runtime) -> None:
    assert rt.run_line("/incident open Slow --components API=major -- Looking.", user="U1").ok
    for n in range(3):
        assert rt.run_line(f"/incident update 1 -- Still {n}.", user="U1").ok
    with statements(rt) as sent:
        assert rt.run_line("/incident update 1 --status identified -- Found.", user="U1").ok
        assert rt.run_line("/incident resolve 1 -- Fixed.", user="U1").ok
    selects = [s for s in sent if s.lstrip().upper().startswith("SELECT")]
    assert selects
    # Only the claims' query touches the updates, and it reads no update's text.
    assert not [s for s in selects if "incident_updates.body" in s]


def test_a_light_read_has_its_updates_if_touched(rt: Runtime) -> None:
    assert rt.run_line("/incident open Slow -- Looking.", user="U1").ok
    with rt.factory() as session, session.begin():
        light = incidents.get(session, number=1, for_update=True, updates=False)
        assert light is not None
        assert "updates" not in inspect(light).dict
        assert light.affected == []  # what a command shows and audits is there
        assert [u.body for u in light.updates] == ["Looking."]


def test_an_update_after_a_full_read_in_one_transaction_keeps_the_updates(
    rt: Runtime,
) -> None:
    """Someone who read the incident whole (a form, the API) and then posts an update
    through the use case still has every update, the new one last."""
    assert rt.run_line("/incident open Slow -- Looking.", user="U1").ok
    with rt.factory() as session, session.begin():
        full = incidents.get(session, number=1, for_update=True)
        assert full is not None
        ctx = rt.context("U1")
        result = uc.update_incident(session, ctx, number=1, message="Still looking.")
        assert result.ok
        assert [u.body for u in full.updates] == ["Looking.", "Still looking."]


def test_an_update_is_one_insert_and_the_sessions_own(rt: Runtime) -> None:
    """The update a command writes is inserted once, at once, and is the object the
    rest of the transaction sees: through the incident, by its id, with its incident."""
    assert rt.run_line("/incident open Slow -- Looking.", user="U1").ok
    with rt.factory() as session, session.begin():
        light = incidents.get(session, number=1, for_update=True, updates=False)
        assert light is not None
        with statements(rt) as sent:
            new = incidents.add_update(
                session,
                light,
                status="identified",
                body="Found it.",
                actor="U1",
                display_at=rt.clock(),
                now=rt.clock(),
            )
            session.flush()
        inserts = [s for s in sent if s.lstrip().upper().startswith("INSERT")]
        assert len(inserts) == 1 and "incident_updates" in inserts[0]
        assert new.id is not None and len(new.code) == 12
        assert new.incident is light and new.changes == []
        assert session.get(IncidentUpdate, new.id) is new
        assert [u.body for u in light.updates] == ["Looking.", "Found it."]
        assert light.updates[-1] is new
        with statements(rt) as at_commit:
            session.flush()
        assert not at_commit  # nothing was left for the unit of work to write
    with rt.factory() as session:
        stored = session.scalars(select(IncidentUpdate).order_by(IncidentUpdate.id)).all()
        assert [(u.body, u.status, u.code) for u in stored][-1] == (
            "Found it.",
            "identified",
            new.code,
        )
        assert len(stored) == 2


def test_an_update_of_an_incident_without_components_asks_for_no_claims(rt: Runtime) -> None:
    """Only components an incident affects can have been claimed by its updates."""
    assert rt.run_line("/incident open Slow -- Looking.", user="U1").ok
    assert rt.run_line("/incident open Down --components API=major -- Looking.", user="U1").ok
    with statements(rt) as sent:
        assert rt.run_line("/incident update 1 --status identified -- Found.", user="U1").ok
    assert not [s for s in sent if "update_component_changes" in s]
    with statements(rt) as sent:
        assert rt.run_line("/incident update 2 --status identified -- Found.", user="U1").ok
    assert [s for s in sent if "update_component_changes" in s]
    assert incident_of(rt, 2).impact == "critical"  # still settled on API's claim


def test_components_are_written_in_the_order_of_their_ids_whatever_the_order_given(
    rt: Runtime,
) -> None:
    """Each component's row is written (on PostgreSQL: locked) in one order, its id's,
    so two updates naming the same components in opposite orders cannot deadlock;
    the update still lists its changes in the order they were given."""
    written: list[int] = []

    def note(_conn: object, _cursor: object, sql: str, params: Any, *_: object) -> None:
        if sql.lstrip().upper().startswith("UPDATE COMPONENTS"):
            rows = params if isinstance(params, list) else [params]
            for row in rows:
                written.append(row[-1] if isinstance(row, tuple | list) else row["component_id"])

    event.listen(rt.engine, "before_cursor_execute", note)
    try:
        r = rt.run_line(
            "/incident open Down --components Newsletter emails=degraded, API=major, "
            "Transactional emails=partial -- Looking.",
            user="U1",
        )
    finally:
        event.remove(rt.engine, "before_cursor_execute", note)
    assert r.ok, r.reply
    with rt.factory() as s:
        ids = dict(s.execute(select(Component.name, Component.id)).tuples().all())
    assert written == sorted(written) and len(written) == 3
    assert ids["API"] < ids["Newsletter emails"]  # so the order given was not theirs
    inc = incident_of(rt, 1)
    names = [c.component.name for c in inc.updates[0].changes]
    assert names == ["Newsletter emails", "API", "Transactional emails"]
