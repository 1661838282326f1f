"""Incidents and maintenances: queries and the mechanics of an update.

An update is the only way an incident changes: it records its status, body and
the component changes it made, writes the components' history and keeps the
incident's own timestamps and derived impact right.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, insert, inspect, select
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session, joinedload, lazyload, make_transient_to_detached, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from storage import components as component_store
from storage.counters import next_value
from storage.models import (
    AffectedComponent,
    Announcement,
    Base,
    Component,
    ComponentChange,
    Incident,
    IncidentNote,
    IncidentUpdate,
    OutboxEntry,
    Postmortem,
    StatusChange,
    StatuspageId,
    new_code,
)
from storage.rules import (
    Cause,
    ComponentStatus,
    Impact,
    IncidentStatus,
    Kind,
    MaintenanceStatus,
    impact_for,
    is_closed,
    worst,
)

# Collections by a query each (selectin), what each row points at joined to that
# query: four statements instead of eight, and each ORM load is most of a command's CPU.
_LOAD = (
    selectinload(Incident.updates)
    .selectinload(IncidentUpdate.changes)
    .joinedload(ComponentChange.component, innerjoin=True),
    selectinload(Incident.affected)
    .joinedload(AffectedComponent.component, innerjoin=True)
    .joinedload(Component.group),
    joinedload(Incident.postmortem),
)


# Built once: SQLAlchemy works out a statement's cache key (a walk over every loader
# option) each time a new one is executed, and keeps it on the statement object.
_GET = select(Incident).where(Incident.number == bindparam("number")).options(*_LOAD)
_GET_FOR_UPDATE = _GET.with_for_update(of=Incident).execution_options(populate_existing=True)

# What a command that only appends an update reads: the incident and the components it
# affects, in one statement. Its updates are left unread (reading them all was most of
# such a command's CPU); the claims an update settles on come from one query
# (`claimed_states`). Lazy, not raising: the re-read (populate_existing) of an incident
# that a form or the API read whole earlier in the transaction resets its updates to
# this strategy, and they must still be there for whoever reads them next.
_LIGHT = (
    joinedload(Incident.affected).joinedload(AffectedComponent.component, innerjoin=True),
    lazyload(Incident.updates),
)
_GET_LIGHT_FOR_UPDATE = (
    select(Incident)
    .where(Incident.number == bindparam("number"))
    .options(*_LIGHT)
    .with_for_update(of=Incident)
    .execution_options(populate_existing=True)
)

# The component states an incident's updates set, oldest first (see `claimed_states`).
_CLAIMS = (
    select(ComponentChange.component_id, ComponentChange.new_status)
    .join(IncidentUpdate, IncidentUpdate.id == ComponentChange.update_id)
    .where(
        IncidentUpdate.incident_id == bindparam("incident_id"),
        IncidentUpdate.status != IncidentStatus.RESOLVED.value,
    )
    .order_by(IncidentUpdate.id, ComponentChange.id)
)


def get_by_id(session: Session, incident_id: int) -> Incident | None:
    """An incident or maintenance by its row id, with everything its view shows loaded."""
    return session.get(Incident, incident_id, options=_LOAD)


def get(
    session: Session, *, number: int, for_update: bool = False, updates: bool = True
) -> Incident | None:
    """The incident or maintenance with this number, with its updates loaded.

    With `for_update` the row is locked until the transaction ends (PostgreSQL;
    SQLite's BEGIN IMMEDIATE already serialises writers) and re-read, so two
    writers changing one incident at once act one after the other on fresh state.
    Without `updates` (for_update only: a command that appends an update) only the
    incident and its affected components are read; its updates load if touched, and
    `add_update` does not touch them.
    """
    if not updates:
        assert for_update, "a light read is for a command that changes the incident"
        found = session.scalars(_GET_LIGHT_FOR_UPDATE, {"number": number}).unique()
        return found.first()
    return session.scalars(_GET_FOR_UPDATE if for_update else _GET, {"number": number}).first()


def create(
    session: Session,
    *,
    kind: Kind,
    title: str,
    status: str,
    impact: Impact,
    impact_override: bool,
    actor: str,
    started_at: datetime,
    now: datetime,
    scheduled_for: datetime | None = None,
    scheduled_until: datetime | None = None,
    auto: bool = True,
    draft: bool = False,
    source_link: str | None = None,
) -> Incident:
    """A new incident or maintenance with the next number; it has no update yet, and is
    written with its first one (`add_update` flushes them together)."""
    incident = Incident(
        number=next_value(session),
        kind=kind.value,
        title=title,
        status=status,
        impact=impact.value,
        impact_override=impact_override,
        created_by=actor,
        created_at=now,
        updated_at=now,
        started_at=started_at,
        scheduled_for=scheduled_for,
        scheduled_until=scheduled_until,
        auto=auto,
        draft=draft,
        source_link=source_link,
        # Set, not left to the column defaults, so that what the first update sets
        # again (still open, not nudged) is no change and costs no UPDATE.
        monitoring_at=None,
        resolved_at=None,
        nudged_at=None,
        nudge_count=0,
        updates=[],
        affected=[],
    )
    session.add(incident)
    return incident


def delete(session: Session, incident: Incident) -> None:
    """Delete an incident with its updates, notes and postmortem; the history it caused
    stays, untied from it. The import's id map forgets it and its updates, so a later
    import of the same page makes them again instead of pointing at rows that are gone."""
    update_ids = [u.id for u in incident.updates]
    postmortem_ids = list(
        session.scalars(select(Postmortem.id).where(Postmortem.incident_id == incident.id))
    )
    session.execute(sql_delete(IncidentNote).where(IncidentNote.incident_id == incident.id))
    session.execute(sql_delete(Postmortem).where(Postmortem.incident_id == incident.id))
    mapped = (StatuspageId.kind == "incident") & (StatuspageId.local_id == incident.id)
    if update_ids:
        mapped |= (StatuspageId.kind == "update") & StatuspageId.local_id.in_(update_ids)
    if postmortem_ids:
        mapped |= (StatuspageId.kind == "postmortem") & StatuspageId.local_id.in_(postmortem_ids)
    session.execute(sql_delete(StatuspageId).where(mapped))
    session.execute(
        sql_update(StatusChange)
        .where(StatusChange.incident_id == incident.id)
        .values(incident_id=None)
    )
    session.execute(sql_delete(OutboxEntry).where(OutboxEntry.incident_id == incident.id))
    if update_ids:
        session.execute(sql_delete(OutboxEntry).where(OutboxEntry.update_id.in_(update_ids)))
    session.execute(sql_delete(Announcement).where(Announcement.incident_id == incident.id))
    session.delete(incident)  # its updates, their changes and its affected rows cascade
    session.flush()


def add_affected(incident: Incident, component: Component) -> None:
    """Mark a component as affected by the incident (once)."""
    if all(a.component_id != component.id for a in incident.affected):
        incident.affected.append(AffectedComponent(component=component, component_id=component.id))


# An update is written with one INSERT into the table, not through the ORM's unit of
# work: working out that flush (an insert ordered after its incident, with a backref
# to maintain) was a third of an `/incident update`'s CPU, all of it spent holding
# SQLite's writers' turn (bot/serve.py), which every other command waits for.
_UPDATES = Base.metadata.tables[IncidentUpdate.__tablename__]
_INSERT_UPDATE = insert(_UPDATES).returning(_UPDATES.c.id)


def add_update(
    session: Session,
    incident: Incident,
    *,
    status: str,
    body: str,
    actor: str,
    display_at: datetime,
    now: datetime,
    changes: Sequence[tuple[Component, ComponentStatus]] = (),
    notify: bool = True,
) -> IncidentUpdate:
    """Append an update, apply its component changes and keep the incident consistent."""
    kind = Kind(incident.kind)
    cause = Cause.INCIDENT if kind is Kind.INCIDENT else Cause.MAINTENANCE
    update = _insert_update(
        session,
        incident,
        status=status,
        body=body,
        author=actor,
        display_at=display_at,
        created_at=now,
        updated_at=now,
        deliver_notifications=notify,
    )
    if incident.draft:
        # A draft's states wait for its publication: the page's components don't move.
        for component, _state in changes:
            add_affected(incident, component)
        incident.draft_components = [[c.id, new.value] for c, new in changes]
    else:
        apply_changes(session, incident, update, changes, cause=cause, actor=actor)
    settle(incident, status=status, display_at=display_at, now=now, session=session, new=update)
    session.flush()
    return update


def _insert_update(session: Session, incident: Incident, **columns: Any) -> IncidentUpdate:
    """Write a new update of `incident` (one INSERT, see _INSERT_UPDATE) and return it
    as the ORM object the rest of the command works with, as if it had been read back.

    It is attached to the session as persistent (nothing left for a flush to insert),
    its incident and its empty changes set without events; the incident's updates, if
    loaded, end with it, as appending it would have left them; if not, they stay
    unread, and include it when read.
    """
    if incident.id is None:
        session.flush()  # a new incident: its update names it
    columns = {"code": new_code(), "incident_id": incident.id, **columns}
    update = IncidentUpdate(id=session.execute(_INSERT_UPDATE, columns).scalar_one(), **columns)
    make_transient_to_detached(update)
    session.add(update)
    set_committed_value(update, "incident", incident)
    set_committed_value(update, "changes", [])
    if "updates" in inspect(incident).dict:
        set_committed_value(incident, "updates", [*incident.updates, update])
    return update


def apply_changes(
    session: Session,
    incident: Incident,
    update: IncidentUpdate,
    changes: Sequence[tuple[Component, ComponentStatus]],
    *,
    cause: Cause,
    actor: str,
) -> None:
    """Set the components' states as `update` says, writing their history at its time."""
    if changes and incident.id is None:
        session.flush()  # a new incident: its history rows name it
    # Each component's row is written (and on PostgreSQL locked) at once, in the order of
    # the components' ids whatever the order given: two updates naming the same components
    # in different orders would otherwise each wait for the other's lock (a deadlock).
    written: list[component_store.Changed | None] = [None] * len(changes)
    for i in sorted(range(len(changes)), key=lambda i: changes[i][0].id):
        component, new = changes[i]
        written[i] = component_store.change_status(
            session,
            component,
            new,
            at=update.display_at,
            cause=cause,
            actor=actor,
            incident_id=incident.id,
        )
    for (component, new), changed in zip(changes, written, strict=True):
        add_affected(incident, component)
        if changed is not None:
            update.changes.append(
                ComponentChange(
                    component=component,
                    component_id=component.id,
                    old_status=changed.old.value,
                    new_status=new.value,
                )
            )


def settle(
    incident: Incident,
    *,
    status: str,
    display_at: datetime,
    now: datetime,
    session: Session | None = None,
    new: IncidentUpdate | None = None,
) -> None:
    """After an update: the incident's status, timestamps and derived impact (with
    `session` and the `new` update, from the database if the incident's updates were
    not loaded: see `claimed_states`)."""
    kind = Kind(incident.kind)
    incident.status = status
    incident.updated_at = now
    incident.nudged_at = None  # a new update ends a quiet spell
    incident.nudge_count = 0
    if status == IncidentStatus.MONITORING and incident.monitoring_at is None:
        incident.monitoring_at = display_at
    if is_closed(kind, status):
        incident.resolved_at = display_at
    else:
        incident.resolved_at = None
    if kind is Kind.INCIDENT and not incident.impact_override and not is_closed(kind, status):
        claims = claimed_states(incident, session=session, new=new)
        incident.impact = impact_for(claims.values()).value


def pending_states(incident: Incident) -> list[tuple[Component, ComponentStatus]]:
    """The component states a draft sets when it is published, in the order given."""
    by_id = {a.component_id: a.component for a in incident.affected}
    out = []
    for component_id, state in incident.draft_components or []:
        component = by_id.get(int(component_id))
        if component is not None and component.removed_at is None:
            out.append((component, ComponentStatus(state)))
    return out


def claimed_states(
    incident: Incident, *, session: Session | None = None, new: IncidentUpdate | None = None
) -> dict[int, ComponentStatus]:
    """The state this incident last set on each component it changed (component id → state);
    for a draft, the states it will set.

    An incident read without its updates (`get(..., updates=False)`) has those written
    so far asked of the database through `session`, in one query, and `new` (appended
    in this session, not yet written) counted after them: one flush for the whole
    update, later, instead of one here too.
    """
    if incident.draft:
        return {c.id: state for c, state in pending_states(incident)}
    if session is None or "updates" in inspect(incident).dict:  # loaded: `new` is in it
        updates: Sequence[IncidentUpdate] = incident.updates
        states: dict[int, ComponentStatus] = {}
    else:
        states = {}
        # Every component an update changes is among the incident's affected ones
        # (apply_changes, the importer), so with none there is nothing to ask for.
        if "affected" not in inspect(incident).dict or incident.affected:
            with session.no_autoflush:
                rows = session.execute(_CLAIMS, {"incident_id": incident.id})
                states = {component_id: ComponentStatus(state) for component_id, state in rows}
        updates = [new] if new is not None else []
    for update in updates:
        if update.status == IncidentStatus.RESOLVED:
            continue
        for change in update.changes:
            states[change.component_id] = ComponentStatus(change.new_status)
    return states


_CLOSED = [
    IncidentStatus.RESOLVED.value,
    MaintenanceStatus.COMPLETED.value,
    MaintenanceStatus.CANCELLED.value,
]


def unresolved(
    session: Session, kind: Kind | None = None, *, drafts: bool = False
) -> list[Incident]:
    """Incidents and maintenances that are not over, oldest number first; drafts only
    when asked for (never discarded ones).

    Their own columns only (the listings show no more); their updates and
    components load if touched.
    """
    return list(session.scalars(_unresolved_statement(kind, drafts)))


@functools.cache
def _unresolved_statement(kind: Kind | None, drafts: bool) -> Select[tuple[Incident]]:
    """unresolved()'s SELECT, built once per kind (every /status asks): a statement built
    anew has its cache key worked out anew."""
    stmt = (
        select(Incident)
        .where(Incident.status.not_in(_CLOSED), Incident.discarded_at.is_(None))
        .order_by(Incident.number)
    )
    if not drafts:
        stmt = stmt.where(Incident.draft.is_(False))
    if kind is not None:
        stmt = stmt.where(Incident.kind == kind.value)
    return stmt


def search(
    session: Session,
    *,
    kind: Kind | None = None,
    statuses: Sequence[str] | None = None,
    text: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    soonest_first: bool = False,
) -> list[Incident]:
    """Public incidents and maintenances (never a draft), newest first (or by
    `scheduled_for`, soonest first), with everything their views show loaded; `text` is
    sought in titles, statuses and update bodies, literally (LIKE's wildcards in it are
    escaped)."""
    stmt = select(Incident).options(*_LOAD).where(Incident.draft.is_(False))
    if kind is not None:
        stmt = stmt.where(Incident.kind == kind.value)
    if statuses is not None:
        stmt = stmt.where(Incident.status.in_(list(statuses)))
    if text:
        in_updates = (
            select(IncidentUpdate.id)
            .where(
                IncidentUpdate.incident_id == Incident.id,
                IncidentUpdate.body.icontains(text, autoescape=True),
            )
            .exists()
        )
        stmt = stmt.where(
            Incident.title.icontains(text, autoescape=True)
            | Incident.status.icontains(text, autoescape=True)
            | in_updates
        )
    if soonest_first:
        stmt = stmt.order_by(Incident.scheduled_for, Incident.number)
    else:
        stmt = stmt.order_by(Incident.created_at.desc(), Incident.number.desc())
    return list(session.scalars(stmt.offset(offset).limit(limit)))


def recent_closed(session: Session, kind: Kind, *, limit: int = 5) -> list[Incident]:
    """The most recently closed incidents (or maintenances) of a kind."""
    closed = (
        [IncidentStatus.RESOLVED.value]
        if kind is Kind.INCIDENT
        else [MaintenanceStatus.COMPLETED.value, MaintenanceStatus.CANCELLED.value]
    )
    stmt = (
        select(Incident)
        .where(Incident.kind == kind.value, Incident.status.in_(closed), Incident.draft.is_(False))
        .order_by(Incident.resolved_at.desc(), Incident.number.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def held_states(
    session: Session, components: Sequence[Component], *, excluding: Incident
) -> dict[int, ComponentStatus]:
    """The state each component must keep when `excluding` lets go of it (by component id).

    Another unresolved incident may still hold it down, or a maintenance in
    progress may hold it under maintenance; otherwise it is operational again.
    Only the open incidents that touch these components are read.
    """
    ids = [c.id for c in components]
    if not ids:
        return {}
    touching = (
        select(AffectedComponent.incident_id)
        .where(AffectedComponent.component_id.in_(ids))
        .scalar_subquery()
    )
    stmt = (
        select(Incident)
        .where(
            Incident.id.in_(touching),
            Incident.id != excluding.id,
            Incident.status.not_in(_CLOSED),
            Incident.draft.is_(False),  # a draft holds nothing until it is published
        )
        .options(*_LOAD)
        .order_by(Incident.number)
    )
    others = list(session.scalars(stmt))
    held: dict[int, list[ComponentStatus]] = {i: [] for i in ids}
    for other in others:
        if other.kind == Kind.INCIDENT:
            for component_id, state in claimed_states(other).items():
                if component_id in held:
                    held[component_id].append(state)
        elif other.status in (MaintenanceStatus.IN_PROGRESS, MaintenanceStatus.VERIFYING):
            for a in other.affected:
                if a.component_id in held:
                    held[a.component_id].append(ComponentStatus.MAINTENANCE)
    return {component_id: worst(states) for component_id, states in held.items()}
