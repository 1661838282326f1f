"""Components through the text grammar: add, set, rename, remove, list."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from bot.runtime import Runtime
from storage import components as store
from storage.models import AuditEvent, Component, Group, OutboxEntry, StatusChange
from storage.rules import Cause, ComponentStatus


def test_add_with_every_option(runtime: Runtime) -> None:
    r = runtime.run_line(
        '/component add "Newsletter emails" --group Email Processing --description Bulk sends '
        "--position 3 --no-showcase --start-date 2017-09-01",
        user="U1",
    )
    assert r.ok, r.reply
    with runtime.factory() as s:
        c = s.scalars(select(Component)).one()
        assert c.name == "Newsletter emails"
        assert c.description == "Bulk sends"
        assert c.position == 3
        assert c.showcase is False
        assert c.start_date == date(2017, 9, 1)
        assert c.group is not None and c.group.name == "Email Processing"


def test_default_start_date_is_today_in_the_page_zone(runtime: Runtime) -> None:
    assert runtime.run_line("/component add API", user="U1").ok
    with runtime.factory() as s:
        c = s.scalars(select(Component)).one()
        assert c.start_date == runtime.clock().astimezone(runtime.settings.tz).date()
        assert c.showcase is True


def test_set_writes_history_audit_and_announcement(runtime: Runtime) -> None:
    assert runtime.run_line("/component add API", user="U1").ok
    r = runtime.run_line("/component set api partial -- Some requests fail.", user="U2")
    assert r.ok, r.reply
    assert "Partial Outage" in r.reply
    assert [n.event for n in r.notices] == ["component.changed"]
    with runtime.factory() as s:
        h = s.scalars(select(StatusChange)).one()
        assert (h.old_status, h.status, h.cause, h.actor) == (
            "operational",
            "partial_outage",
            "manual",
            "U2",
        )
        entry = s.scalars(select(OutboxEntry).where(OutboxEntry.kind == "slack")).one()
        assert entry.payload["message"] == "Some requests fail."
        audit = s.scalars(select(AuditEvent).where(AuditEvent.action == "component.set")).one()
        assert audit.before is not None and audit.before["status"] == "operational"
        assert audit.after is not None and audit.after["status"] == "partial_outage"


def test_set_a_name_with_spaces_and_short_states(runtime: Runtime) -> None:
    assert runtime.run_line('/component add "Transactional emails" --group Email', user="U1").ok
    for word, state in [
        ("down", "major_outage"),
        ("ok", "operational"),
        ("degraded", "degraded_performance"),
        ("maintenance", "under_maintenance"),
        ("major_outage", "major_outage"),
    ]:
        r = runtime.run_line(f"/component set Transactional emails {word}", user="U1")
        assert r.ok, r.reply
        with runtime.factory() as s:
            assert s.scalars(select(Component.status)).one() == state


def test_rename_and_remove(runtime: Runtime) -> None:
    assert runtime.run_line("/component add Web", user="U1").ok
    assert runtime.run_line("/component rename web --to Web app", user="U1").ok
    assert runtime.run_line("/incident open X --components Web app=major", user="U1").ok
    assert runtime.run_line("/component remove Web app", user="U1").ok
    listing = runtime.run_line("/component list", user="U1").reply
    assert "Web app" not in listing
    # The name is free again; the removed component's history stays.
    assert runtime.run_line("/component add Web app", user="U1").ok
    with runtime.factory() as s:
        assert len(s.scalars(select(Component)).all()) == 2
        assert len(s.scalars(select(StatusChange)).all()) == 1
    # Resolving the incident leaves the removed component alone.
    assert runtime.run_line("/incident resolve 1", user="U1").ok


def test_list_groups_components(runtime: Runtime) -> None:
    for line in [
        "/component add API",
        "/component add Transactional --group Email",
        "/component add Newsletter --group Email",
        "/component add Reports --group Web",
    ]:
        assert runtime.run_line(line, user="U1").ok
    listing = runtime.run_line("/component list", user="U1").reply
    assert listing.splitlines() == [
        "• API: Operational",
        "Email",
        "  • Transactional: Operational",
        "  • Newsletter: Operational",
        "Web",
        "  • Reports: Operational",
    ]
    with runtime.factory() as s:
        assert [g.name for g in s.scalars(select(Group).order_by(Group.position))] == [
            "Email",
            "Web",
        ]


def test_set_finds_the_live_component_by_name_or_group_and_name(runtime: Runtime) -> None:
    """A name is looked up directly; a removed component of the same name is not it, and
    `Group/Name`, a group's name or a near miss still get their answers."""
    for line in [
        "/component add Web",
        "/component remove Web",
        "/component add Web",
        "/component add Newsletter --group Email",
    ]:
        assert runtime.run_line(line, user="U1").ok, line
    assert runtime.run_line("/component set  WEB  down", user="U1").ok
    assert runtime.run_line("/component set email/newsletter degraded", user="U1").ok
    with runtime.factory() as s:
        states = s.execute(select(Component.name, Component.status, Component.removed_at))
        assert sorted((n, st, r is None) for n, st, r in states) == [
            ("Newsletter", "degraded_performance", True),
            ("Web", "major_outage", True),
            ("Web", "operational", False),
        ]
    assert "is a group" in runtime.run_line("/component set Email down", user="U1").reply
    assert "Did you mean 'Web'" in runtime.run_line("/component set Webb down", user="U1").reply


def test_a_status_change_is_written_at_once_and_leaves_nothing_to_flush(
    runtime: Runtime,
) -> None:
    """change_status writes the component's row itself: the database has the new state
    before any flush, the object shows it, and the unit of work has nothing left."""
    assert runtime.run_line("/component add API", user="U1").ok
    at = runtime.clock()
    with runtime.factory() as session, session.begin():
        api = session.scalars(select(Component).where(Component.name == "API")).one()
        changed = store.change_status(
            session, api, ComponentStatus.MAJOR, at=at, cause=Cause.MANUAL, actor="U1"
        )
        assert changed is not None and changed.old is ComponentStatus.OPERATIONAL
        assert api.status == "major_outage" and api.updated_at == at
        assert not session.dirty
        with session.no_autoflush:
            stored = session.execute(
                select(Component.status, Component.updated_at).where(Component.id == api.id)
            ).one()
        assert stored == ("major_outage", at)
        assert (
            store.change_status(
                session, api, ComponentStatus.MAJOR, at=at, cause=Cause.MANUAL, actor="U1"
            )
            is None
        )  # unchanged: nothing written
    with runtime.factory() as session:
        assert session.scalars(select(Component.status)).all() == ["major_outage"]
        assert len(session.scalars(select(StatusChange)).all()) == 1
