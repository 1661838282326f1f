"""Components and groups: queries, and the one way a component's status changes."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from storage.models import Base, Component, Group, StatusChange
from storage.rules import Cause, ComponentStatus


def name_key(name: str) -> str:
    """How names compare: case-insensitive, with runs of spaces folded."""
    return " ".join(name.split()).casefold()


def live(session: Session, *, groups: bool = True) -> list[Component]:
    """Components that are not removed, in page order (ungrouped by position, grouped by group);
    with their groups loaded unless `groups` is off."""
    return list(session.scalars(_LIVE_WITH_GROUPS if groups else _LIVE))


# Built once: SQLAlchemy works out a statement's cache key each time a new statement
# object is executed (a walk over it and its options), and keeps it on the object.
_LIVE = (
    select(Component)
    .where(Component.removed_at.is_(None))
    .outerjoin(Group, Component.group_id == Group.id)
    .order_by(
        func.coalesce(Group.position, Component.position),
        Group.id.is_not(None),
        Group.id,
        Component.position,
        Component.id,
    )
)
_LIVE_WITH_GROUPS = _LIVE.options(selectinload(Component.group))


class NameAndState(NamedTuple):
    """A live component as /status shows it."""

    name: str
    status: str


def live_states(session: Session) -> list[NameAndState]:
    """The live components' names and states, in page order: rows, not ORM objects."""
    return [NameAndState(name, status) for name, status in session.execute(_LIVE_STATES)]


_LIVE_STATES = _LIVE.with_only_columns(Component.name, Component.status)


_NAMED = (
    select(Component)
    .where(Component.name_key == bindparam("name_key"), Component.removed_at.is_(None))
    .options(joinedload(Component.group))
)


def live_named(session: Session, name: str) -> Component | None:
    """The live component called `name` (any case; its group not part of it), with its
    group loaded: one probe of the live names' unique index."""
    return session.scalars(_NAMED, {"name_key": name_key(name)}).first()


def groups(session: Session) -> list[Group]:
    """Every group, in page order."""
    return list(session.scalars(select(Group).order_by(Group.position, Group.id)))


def group_named(session: Session, name: str) -> Group | None:
    """The group with this name, any case."""
    return session.scalars(select(Group).where(Group.name_key == name_key(name))).first()


def next_position(session: Session, group: Group | None) -> int:
    """The position after the last component (and group) at this level."""
    if group is None:
        top_components = select(func.max(Component.position)).where(
            Component.group_id.is_(None), Component.removed_at.is_(None)
        )
        top_groups = select(func.max(Group.position))
        highest = max(
            session.scalar(top_components) or 0,
            session.scalar(top_groups) or 0,
        )
    else:
        highest = (
            session.scalar(
                select(func.max(Component.position)).where(
                    Component.group_id == group.id, Component.removed_at.is_(None)
                )
            )
            or 0
        )
    return highest + 1


class Changed(NamedTuple):
    """A status change just written: the state before it, and its history row's id."""

    old: ComponentStatus
    change_id: int


def change_status(
    session: Session,
    component: Component,
    status: ComponentStatus,
    *,
    at: datetime,
    cause: Cause,
    actor: str,
    incident_id: int | None = None,
) -> Changed | None:
    """Set a component's status and write its history; the old status and the history
    row's id, None if unchanged."""
    old = ComponentStatus(component.status)
    if old is status:
        return None
    # Written at once, not left to the unit of work: flushing this one row through it
    # was a fifth of a /component set's CPU, inside SQLite's writers' turn.
    session.execute(_SET_STATUS, {"component_id": component.id, "status": status.value, "at": at})
    set_committed_value(component, "status", status.value)
    set_committed_value(component, "updated_at", at)
    row = {
        "component_id": component.id,
        "at": at,
        "old_status": old.value,
        "status": status.value,
        "cause": cause.value,
        "incident_id": incident_id,
        "actor": actor,
    }
    return Changed(old, session.execute(_INSERT_CHANGE, row).scalar_one())


# An INSERT into the table, not an ORM object: nothing maps a relationship to the
# history, and RETURNING hands back the id that `component.changed` carries, with no
# flush and no max() query to learn it. The component and incident it names have ids,
# so they are in the database already.
_HISTORY = Base.metadata.tables[StatusChange.__tablename__]
_INSERT_CHANGE = insert(_HISTORY).returning(_HISTORY.c.id)
_COMPONENTS = Base.metadata.tables[Component.__tablename__]
_SET_STATUS = (
    update(_COMPONENTS)
    .where(_COMPONENTS.c.id == bindparam("component_id"))
    .values(status=bindparam("status"), updated_at=bindparam("at"))
)


def history(session: Session, component_ids: list[int] | None = None) -> list[StatusChange]:
    """Status changes, oldest first, for some components or all of them."""
    stmt = select(StatusChange).order_by(StatusChange.at, StatusChange.id)
    if component_ids is not None:
        stmt = stmt.where(StatusChange.component_id.in_(component_ids))
    return list(session.scalars(stmt))
