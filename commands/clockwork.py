"""What the clock does, as use cases: maintenance windows that run themselves, reminders.

Each function is safe to run twice, or in two processes at once: it locks the
row, re-checks that the work is still due, and does nothing otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from commands import words
from commands.common import fan_out
from commands.context import Context, Editors
from commands.errors import CommandError
from commands.maintenance import move_maintenance
from commands.result import Notice, Result
from storage import incidents as store
from storage import outbox
from storage.models import Incident
from storage.rules import IncidentStatus, Kind, MaintenanceStatus

# The clock's name in the audit log and on updates.
CLOCK_ACTOR = "statusbot"
# A transition this late says so on the page: statusbot was not running on time.
LATE = timedelta(minutes=1)
# How many reminders one quiet spell of an incident gets before the clock stops nagging.
MAX_NUDGES = 3

_NOTHING = Result(reply="", ok=True, changed=False)


def start_if_due(session: Session, ctx: Context, number: int) -> Result:
    """Start an automatic maintenance whose time has come (no-op if someone else did)."""
    found = store.get(session, number=number, for_update=True)
    if (
        found is None
        or not found.auto
        or found.status != MaintenanceStatus.SCHEDULED
        or found.scheduled_for is None
        or found.scheduled_for > ctx.now
    ):
        return _NOTHING
    message = None
    if ctx.now - found.scheduled_for > LATE:
        message = (
            f"Scheduled maintenance started at {words.when(ctx.now, ctx.page_tz)}, later than "
            f"planned ({words.when(found.scheduled_for, ctx.page_tz)}): statusbot was not "
            "running at the scheduled time."
        )
    return _move(session, ctx, number, MaintenanceStatus.IN_PROGRESS, message, verb="start")


def complete_if_due(session: Session, ctx: Context, number: int) -> Result:
    """Complete an automatic maintenance whose window has ended (no-op if already done)."""
    found = store.get(session, number=number, for_update=True)
    if (
        found is None
        or not found.auto
        or found.status not in (MaintenanceStatus.IN_PROGRESS, MaintenanceStatus.VERIFYING)
        or found.scheduled_until is None
        or found.scheduled_until > ctx.now
    ):
        return _NOTHING
    message = None
    if ctx.now - found.scheduled_until > LATE:
        message = (
            f"The maintenance window ended {words.when(found.scheduled_until, ctx.page_tz)}; "
            f"statusbot was not running then, so it is recorded as completed at "
            f"{words.when(ctx.now, ctx.page_tz)}."
        )
    return _move(session, ctx, number, MaintenanceStatus.COMPLETED, message, verb="complete")


def _move(
    session: Session,
    ctx: Context,
    number: int,
    status: MaintenanceStatus,
    message: str | None,
    *,
    verb: str,
) -> Result:
    try:
        return move_maintenance(
            session, ctx, number=number, status=status, message=message, verb=verb
        )
    except CommandError:
        return _NOTHING  # moved by someone else between the check and now


def send_notice(session: Session, ctx: Context, number: int) -> Result:
    """Announce an upcoming maintenance once, ahead of its start."""
    found = store.get(session, number=number, for_update=True)
    if (
        found is None
        or found.kind != Kind.MAINTENANCE
        or found.status != MaintenanceStatus.SCHEDULED
        or found.notice_sent_at is not None
        or found.scheduled_for is None
        or found.scheduled_until is None
    ):
        return _NOTHING
    found.notice_sent_at = ctx.now
    text = (
        f"Reminder: maintenance #{number} {words.plain_quote(found.title)} starts "
        f"{words.when(found.scheduled_for, ctx.page_tz)} and runs until "
        f"{words.when(found.scheduled_until, ctx.page_tz)}."
    )
    return _remind(session, ctx, found, "maintenance.notice", text)


def nudge(session: Session, ctx: Context, number: int, *, stale_after: timedelta) -> Result:
    """Remind an open incident's thread that it has had no update for a while."""
    found = store.get(session, number=number, for_update=True)
    if found is None or found.kind != Kind.INCIDENT or found.status == IncidentStatus.RESOLVED:
        return _NOTHING
    last = max((u.created_at for u in found.updates), default=found.created_at)
    cutoff = ctx.now - stale_after
    if last > cutoff or (found.nudged_at is not None and found.nudged_at > cutoff):
        return _NOTHING
    if found.nudge_count >= MAX_NUDGES:
        return _NOTHING
    found.nudged_at = ctx.now
    found.nudge_count += 1
    quiet = _minutes(ctx.now - last)
    text = (
        f"#{number} {words.plain_quote(found.title)} has had no update for {quiet}. Customers are "
        f"watching the status page: post one with /incident update {number} -- MESSAGE, "
        f"or resolve it with /incident resolve {number}."
    )
    return _remind(session, ctx, found, "incident.stale", text)


def _remind(session: Session, ctx: Context, found: Incident, event: str, text: str) -> Result:
    """Queue a reminder for the incident's thread in every notify channel."""
    outbox.enqueue(
        session,
        channels=ctx.notify_channels,
        event=event,
        at=ctx.now,
        incident_id=found.id,
        payload={"number": found.number, "text": text},
    )
    # Subscribers hear of maintenance.notice (the reminder); a nudge is for the team only.
    fan_out(
        session,
        ctx,
        event,
        incident_id=found.id,
        payload={
            "number": found.number,
            "components": sorted(a.component_id for a in found.affected),
        },
    )
    return Result(
        reply=text,
        changed=True,
        notices=(Notice(event=event, number=found.number, text=text),),
        number=found.number,
    )


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} minutes"
    return f"{minutes // 60} hours {minutes % 60} minutes"


def clock_context(base: Context, now: datetime) -> Context:
    """The clock acts as itself, with no editor check (it is not a person)."""
    return replace(base, actor=CLOCK_ACTOR, now=now, editors=Editors())
