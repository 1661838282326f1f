"""Components and groups: queries, and the one way a component's status changes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from storage.models import Component, Group, StatusChange
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


def change_status(
    session: Session,
    component: Component,
    status: ComponentStatus,
    *,
    at: datetime,
    cause: Cause,
    actor: str,
    incident_id: int | None = None,
) -> ComponentStatus | None:
    """Set a component's status and write its history; returns the old status, None if unchanged."""
    old = ComponentStatus(component.status)
    if old is status:
        return None
    component.status = status.value
    component.updated_at = at
    session.add(
        StatusChange(
            component_id=component.id,
            at=at,
            old_status=old.value,
            status=status.value,
            cause=cause.value,
            incident_id=incident_id,
            actor=actor,
        )
    )
    return old


def last_change_id(session: Session, component: Component) -> int | None:
    """The id of the component's newest status change (flushed first, so it has one)."""
    session.flush()
    return session.scalar(_LAST_CHANGE, {"component_id": component.id})


_LAST_CHANGE = select(func.max(StatusChange.id)).where(
    StatusChange.component_id == bindparam("component_id")
)


def history(session: Session, component_ids: list[int] | None = None) -> list[StatusChange]:
    """Status changes, oldest first, for some components or all of them."""
    stmt = select(StatusChange).order_by(StatusChange.at, StatusChange.id)
    if component_ids is not None:
        stmt = stmt.where(StatusChange.component_id.in_(component_ids))
    return list(session.scalars(stmt))
