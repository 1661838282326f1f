"""Maintenance use cases: schedule, update, start, complete, cancel.

The scheduler calls `start_maintenance` and `complete_maintenance` too, as the
actor `statusbot`, so a window that runs by itself is recorded the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from commands import words
from commands.common import (
    authorise,
    check_message,
    check_title,
    incident_state,
    post_update,
)
from commands.context import Context
from commands.errors import CommandError
from commands.result import Result
from storage import incidents as store
from storage.models import Component, Incident
from storage.rules import (
    ComponentStatus,
    Impact,
    Kind,
    MaintenanceStatus,
    maintenance_transition_allowed,
)

DEFAULT_BODY = {
    MaintenanceStatus.SCHEDULED: "",
    MaintenanceStatus.IN_PROGRESS: (
        "Scheduled maintenance is currently in progress. We will provide updates as necessary."
    ),
    MaintenanceStatus.VERIFYING: "Verification is currently underway for the maintenance items.",
    MaintenanceStatus.COMPLETED: "The scheduled maintenance has been completed.",
    MaintenanceStatus.CANCELLED: "This scheduled maintenance has been cancelled.",
}

EVENTS = {
    MaintenanceStatus.SCHEDULED: "maintenance.updated",
    MaintenanceStatus.IN_PROGRESS: "maintenance.started",
    MaintenanceStatus.VERIFYING: "maintenance.updated",
    MaintenanceStatus.COMPLETED: "maintenance.completed",
    MaintenanceStatus.CANCELLED: "maintenance.cancelled",
}


def get_maintenance(session: Session, number: int, usage: str) -> Incident:
    """The maintenance with this number, or an error that says what there is instead."""
    found = store.get(session, number=number, for_update=True)
    if found is None:
        raise CommandError(f"There is no maintenance #{number}. See /maintenance list.", usage)
    if found.kind != Kind.MAINTENANCE:
        raise CommandError(f"#{number} is an incident, not a maintenance: use /incident.", usage)
    return found


def schedule_maintenance(
    session: Session,
    ctx: Context,
    *,
    title: str,
    start: datetime,
    end: datetime,
    components: Sequence[Component] = (),
    auto: bool = True,
    message: str | None = None,
    notify: bool = True,
) -> Result:
    """Schedule a maintenance window; its components are untouched until it starts."""
    usage = words.USAGE["maintenance schedule"]
    authorise(ctx, action="maintenance.schedule", target="new maintenance")
    title = check_title(title, usage)
    body = check_message(message, usage)
    if end <= start:
        raise CommandError(
            f"The end ({words.when(end, ctx.tz)}) must be after the start "
            f"({words.when(start, ctx.tz)}).",
            usage,
        )
    if end <= ctx.now:
        raise CommandError(
            f"That window ended {words.when(end, ctx.tz)}; a maintenance is scheduled ahead.",
            usage,
        )
    maintenance = store.create(
        session,
        kind=Kind.MAINTENANCE,
        title=title,
        status=MaintenanceStatus.SCHEDULED.value,
        impact=Impact.MAINTENANCE,
        impact_override=True,
        actor=ctx.actor,
        started_at=start,
        now=ctx.now,
        scheduled_for=start,
        scheduled_until=end,
        auto=auto,
    )
    for component in components:
        store.add_affected(maintenance, component)
    notices = post_update(
        session,
        ctx,
        maintenance,
        action="maintenance.schedule",
        event="maintenance.scheduled",
        status=MaintenanceStatus.SCHEDULED.value,
        body=body,
        before=None,
        notify=notify,
        state=_state,
    )
    how = "starts and completes by itself" if auto else "start and complete it by hand"
    return Result(
        reply=f"Scheduled maintenance #{maintenance.number} {words.quote(title)} from "
        f"{words.when(start, ctx.tz)} to {words.when(end, ctx.tz)} ({how})."
        + ("" if notify else words.NOT_ANNOUNCED),
        changed=True,
        notices=notices,
        number=maintenance.number,
    )


def move_maintenance(
    session: Session,
    ctx: Context,
    *,
    number: int,
    status: MaintenanceStatus,
    message: str | None = None,
    at: datetime | None = None,
    verb: str = "update",
    notify: bool = True,
) -> Result:
    """Take a maintenance to a new status, moving its components as that requires."""
    usage = words.USAGE[f"maintenance {verb}"]
    authorise(ctx, action=f"maintenance.{verb}", target=f"#{number}")
    maintenance = get_maintenance(session, number, usage)
    current = MaintenanceStatus(maintenance.status)
    if not maintenance_transition_allowed(current, status) or (
        current is status and verb != "update"
    ):
        raise CommandError(
            f"#{number} is {words.status_label(current)}; it can't be {_verb_past(status)} now.",
            usage,
        )
    required = verb == "update" and status is current
    body = check_message(message, usage, required=required) or DEFAULT_BODY[status]
    when = at or ctx.now
    before = _state(maintenance)
    changes = _component_moves(session, maintenance, current, status)
    notices = post_update(
        session,
        ctx,
        maintenance,
        action=f"maintenance.{verb}",
        event=EVENTS[status],
        status=status.value,
        body=body,
        before=before,
        at=when,
        changes=changes,
        notify=notify,
        state=_state,
    )
    return Result(
        reply=f"#{number} {words.quote(maintenance.title)} is now {words.status_label(status)}."
        + ("" if notify else words.NOT_ANNOUNCED),
        changed=True,
        notices=notices,
        number=number,
    )


def _component_moves(
    session: Session, maintenance: Incident, old: MaintenanceStatus, new: MaintenanceStatus
) -> list[tuple[Component, ComponentStatus]]:
    """Components go under maintenance when it starts, and back when it ends."""
    live = [a.component for a in maintenance.affected if a.component.removed_at is None]
    active = (MaintenanceStatus.IN_PROGRESS, MaintenanceStatus.VERIFYING)
    if old not in active and new in active:
        # Keep the states set by hand; a state an open incident holds is that
        # incident's to keep, and comes back through held_states at the end only
        # if the incident is still open then.
        holds = store.held_states(session, live, excluding=maintenance)
        maintenance.restore_states = {
            str(c.id): c.status
            if holds[c.id] is ComponentStatus.OPERATIONAL
            else ComponentStatus.OPERATIONAL.value
            for c in live
        }
        return [(c, ComponentStatus.MAINTENANCE) for c in live]
    if old in active and new not in active:
        saved = maintenance.restore_states or {}
        # Someone may have set a component since it started: their word stands.
        ours = [c for c in live if c.status == ComponentStatus.MAINTENANCE]
        holds = store.held_states(session, ours, excluding=maintenance)
        moves = []
        for c in ours:
            held = holds[c.id]
            before = ComponentStatus(saved.get(str(c.id), ComponentStatus.OPERATIONAL.value))
            moves.append((c, held if held is not ComponentStatus.OPERATIONAL else before))
        return moves
    return []


def _state(maintenance: Incident) -> dict[str, object]:
    state = incident_state(maintenance)
    state["scheduled_for"] = (
        maintenance.scheduled_for.isoformat() if maintenance.scheduled_for else None
    )
    state["scheduled_until"] = (
        maintenance.scheduled_until.isoformat() if maintenance.scheduled_until else None
    )
    state["auto"] = maintenance.auto
    return state


def _verb_past(status: MaintenanceStatus) -> str:
    return {
        MaintenanceStatus.SCHEDULED: "scheduled again",
        MaintenanceStatus.IN_PROGRESS: "started",
        MaintenanceStatus.VERIFYING: "set to verifying",
        MaintenanceStatus.COMPLETED: "completed",
        MaintenanceStatus.CANCELLED: "cancelled",
    }[status]
