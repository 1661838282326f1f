"""Pieces every use case shares: checks on input, the audit trail, announcements."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from commands import textrules, words
from commands.context import Context, NotAllowed
from commands.errors import CommandError
from commands.result import Notice
from storage import audit, incidents, outbox
from storage.escaping import escape
from storage.models import Component, Incident, IncidentUpdate
from storage.rules import ComponentStatus

# A clock a little ahead of ours (Slack's, a laptop's) is not "the future".
CLOCK_SKEW = timedelta(seconds=60)

# What subscribers are told of (SPEC §9 "What is sent"); edits and nudges stay in Slack.
FANOUT_EVENTS = frozenset(
    {
        "incident.opened",
        "incident.updated",
        "incident.resolved",
        "incident.reopened",
        "maintenance.scheduled",
        "maintenance.notice",
        "maintenance.started",
        "maintenance.completed",
        "maintenance.cancelled",
        "component.changed",
        "postmortem.published",
    }
)


def authorise(ctx: Context, *, action: str, target: str) -> None:
    """Refuse a change from someone who is not an editor (SPEC §4)."""
    if ctx.editors.allows(ctx.actor):
        return
    # Not found in any group Slack answered for; if one went unanswered, say so
    # rather than calling the person a non-editor.
    wording = words.SLACK_UNANSWERED if ctx.editors.unanswered else words.NOT_AN_EDITOR
    raise NotAllowed(
        wording.format(who=words.mention(ctx.actor), action=action.replace(".", " ")),
        action=action,
        target=target,
    )


def check_title(title: str, usage: str) -> str:
    """A title: present, and within the text rules (one line, 200 characters)."""
    title = textrules.check(title, textrules.TITLE, usage)
    if not title:
        raise CommandError("Give it a title.", usage)
    return title


def check_message(
    message: str | None, usage: str, *, required: bool = False, what: str = "the update"
) -> str:
    """A message body within the text rules (Slack's 3,000 characters); required for updates."""
    body = textrules.check(message or "", textrules.MESSAGE, usage)
    if required and not body:
        raise CommandError(f"Write {what} after a lone --, e.g. `-- We found the cause.`", usage)
    return body


def check_past(at: datetime, ctx: Context, usage: str) -> datetime:
    """A backfilled time (--at) may be in the past, never in the future."""
    if at > ctx.now + CLOCK_SKEW:
        raise CommandError(
            f"--at {words.when(at, ctx.tz)} is in the future; --at backfills a time that has "
            "passed. Leave it out to use now.",
            usage,
        )
    return min(at, ctx.now)


def incident_state(incident: Incident) -> dict[str, Any]:
    """What the audit log keeps of an incident, before and after a change."""
    state: dict[str, Any] = {
        "number": incident.number,
        "title": incident.title,
        "status": incident.status,
        "impact": incident.impact,
        "components": sorted(a.component.name for a in incident.affected),
    }
    if incident.draft:
        state["draft"] = True
    return state


def component_state(component: Component) -> dict[str, Any]:
    """What the audit log keeps of a component."""
    return {
        "name": component.name,
        "status": component.status,
        "group": component.group.name if component.group else None,
        "description": component.description,
        "position": component.position,
        "showcase": component.showcase,
        "start_date": component.start_date.isoformat() if component.start_date else None,
        "removed": component.removed_at is not None,
    }


def audit_change(
    session: Session,
    ctx: Context,
    *,
    action: str,
    target: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Record a change made by the person in the context."""
    audit.record(
        session,
        actor=ctx.actor,
        action=action,
        target=target,
        at=ctx.now,
        before=before,
        after=after,
    )


def announce(
    session: Session,
    ctx: Context,
    event: str,
    incident: Incident,
    update: IncidentUpdate | None = None,
    *,
    fanout_event: str | None = None,
) -> Notice:
    """Queue an announcement of an incident or maintenance in every notify channel,
    and its fan-out to subscribers (as `fanout_event` when they hear of it by another
    name); nothing of a draft is ever fanned out."""
    update_id = update.id if update is not None else None
    rows: list[dict[str, Any]] = []  # the channels' and the subscribers': one INSERT
    outbox.enqueue(
        session,
        channels=ctx.notify_channels,
        event=event,
        at=ctx.now,
        incident_id=incident.id,
        update_id=update_id,
        payload={"number": incident.number},
        into=rows,
    )
    if not incident.draft:
        fan_out(
            session,
            ctx,
            fanout_event or event,
            incident_id=incident.id,
            update_id=update_id,
            payload={
                "number": incident.number,
                "components": sorted(a.component_id for a in incident.affected),
            },
            into=rows,
        )
    outbox.add(session, rows)
    return Notice(event=event, number=incident.number, text=summary(incident, update, ctx))


def fan_out(
    session: Session,
    ctx: Context,
    event: str,
    *,
    payload: dict[str, Any],
    incident_id: int | None = None,
    update_id: int | None = None,
    into: list[dict[str, Any]] | None = None,
) -> None:
    """Queue ONE fan-out entry for subscribers (if they hear of `event`): the deliverer
    expands it later, so a change's transaction does not grow with the subscribers.
    With `into`, its row joins that list, as with `outbox.enqueue`."""
    if event not in FANOUT_EVENTS or not ctx.tell_subscribers:
        return
    outbox.enqueue(
        session,
        channels=[outbox.FANOUT_LINE],
        event=event,
        at=ctx.now,
        incident_id=incident_id,
        update_id=update_id,
        payload=payload,
        kind=outbox.Kind.FANOUT,
        into=into,
    )


def post_update(
    session: Session,
    ctx: Context,
    incident: Incident,
    *,
    action: str,
    event: str,
    status: str,
    body: str,
    before: dict[str, Any] | None,
    at: datetime | None = None,
    changes: Sequence[tuple[Component, ComponentStatus]] = (),
    notify: bool = True,
    state: Callable[[Incident], dict[str, Any]] = incident_state,
) -> tuple[Notice, ...]:
    """The one way an incident or maintenance moves on: append the update (with its
    component changes), audit the change, and announce it unless `notify` is off."""
    update = incidents.add_update(
        session,
        incident,
        status=status,
        body=body,
        actor=ctx.actor,
        display_at=at or ctx.now,
        now=ctx.now,
        changes=changes,
        notify=notify,
    )
    audit_change(
        session,
        ctx,
        action=action,
        target=f"#{incident.number}",
        before=before,
        after=state(incident),
    )
    return (announce(session, ctx, event, incident, update),) if notify else ()


def summary(incident: Incident, update: IncidentUpdate | None, ctx: Context) -> str:
    """A plain one-paragraph summary of an incident and its latest update."""
    head = (
        f"#{incident.number} {words.quote(incident.title)} · {words.status_label(incident.status)}"
    )
    if incident.kind == "incident":
        head += f" · impact {incident.impact}"
    if incident.scheduled_for and incident.scheduled_until:
        head += (
            f" · {words.when(incident.scheduled_for, ctx.page_tz)} → "
            f"{words.when(incident.scheduled_until, ctx.page_tz)}"
        )
    lines = [head]
    if update is not None:
        for change in update.changes:
            lines.append(
                f"  {escape(change.component.name)}: {words.component_label(change.old_status)} → "
                f"{words.component_label(change.new_status)}"
            )
        if update.body:
            lines.append("  " + escape(update.body).replace("\n", "\n  "))
    return "\n".join(lines)
