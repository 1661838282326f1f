"""Incident use cases: open, update, resolve, reopen, edit, list, show.

The text grammar (commands/text.py), the Slack modals and the scheduler all end
here, so every path checks, audits and announces the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from commands import words
from commands.common import (
    announce,
    audit_change,
    authorise,
    check_message,
    check_past,
    check_title,
    incident_state,
    post_update,
)
from commands.context import Context
from commands.errors import CommandError
from commands.result import Result
from storage import incidents as store
from storage.escaping import escape
from storage.models import Component, Incident
from storage.rules import (
    ComponentStatus,
    Impact,
    IncidentStatus,
    Kind,
    incident_transition_allowed,
)

Changes = Sequence[tuple[Component, ComponentStatus]]

DEFAULT_RESOLVED = "This incident has been resolved."
DEFAULT_REOPENED = "This incident has been reopened."


def get_incident(
    session: Session, number: int, usage: str, *, drafts: bool = False, updates: bool = True
) -> Incident:
    """The incident with this number, or an error that says what there is instead.

    A draft is found only when the caller handles drafts (`drafts`); a discarded
    draft never is. Without `updates`, its updates are not read (for a use case that
    only appends one: see storage.incidents.get).
    """
    incident = store.get(session, number=number, for_update=True, updates=updates)
    if incident is None:
        raise CommandError(f"There is no incident #{number}. See /incident list.", usage)
    if incident.kind != Kind.INCIDENT:
        raise CommandError(f"#{number} is a maintenance, not an incident: use /maintenance.", usage)
    if incident.discarded_at is not None:
        raise CommandError(f"#{number} was a draft, and it was discarded.", usage)
    if incident.draft and not drafts:
        raise CommandError(words.DRAFT_FIRST.format(number=number), usage)
    return incident


def _check_changes(changes: Changes, usage: str) -> None:
    for component, state in changes:
        if state is ComponentStatus.MAINTENANCE:
            raise CommandError(
                f"An incident can't put {escape(component.name)} under maintenance; schedule a "
                "maintenance with /maintenance schedule.",
                usage,
            )


def open_incident(
    session: Session,
    ctx: Context,
    *,
    title: str,
    message: str | None = None,
    status: IncidentStatus = IncidentStatus.INVESTIGATING,
    impact: Impact | None = None,
    components: Changes = (),
    at: datetime | None = None,
    notify: bool = True,
    draft: bool = False,
    source_link: str | None = None,
) -> Result:
    """Declare an incident: number it, apply its component states, announce it.

    A draft is numbered and announced in Slack, marked, and nothing else: its
    component states wait for `commands.drafts.publish_draft`.
    """
    usage = words.USAGE["incident open"]
    authorise(ctx, action="incident.open", target="new incident")
    title = check_title(title, usage)
    body = check_message(message, usage)
    when = check_past(at, ctx, usage) if at is not None else ctx.now
    _check_changes(components, usage)
    if status is IncidentStatus.RESOLVED:
        raise CommandError(
            "A new incident can't start resolved. Open it, then /incident resolve it.", usage
        )
    if impact is Impact.MAINTENANCE:
        raise CommandError("An incident's impact is none, minor, major or critical.", usage)
    if draft and at is not None:
        raise CommandError(
            "A draft has no --at: it becomes public, as if opened then, when it is published.",
            usage,
        )
    incident = store.create(
        session,
        kind=Kind.INCIDENT,
        title=title,
        status=status.value,
        impact=impact or Impact.NONE,
        impact_override=impact is not None,
        actor=ctx.actor,
        started_at=when,
        now=ctx.now,
        draft=draft,
        source_link=source_link,
    )
    notices = post_update(
        session,
        ctx,
        incident,
        action="incident.draft" if draft else "incident.open",
        event="incident.opened",
        status=status.value,
        body=body,
        before=None,
        at=when,
        changes=components,
        notify=notify,
    )
    if draft:
        return Result(
            reply=words.DRAFTED.format(number=incident.number, title=words.quote(title))
            + _where(ctx, notify),
            changed=True,
            notices=notices,
            number=incident.number,
        )
    return Result(
        reply=f"Opened incident #{incident.number} {words.quote(title)}: "
        f"{words.status_label(incident.status)}, impact {incident.impact}." + _where(ctx, notify),
        changed=True,
        notices=notices,
        number=incident.number,
    )


def update_incident(
    session: Session,
    ctx: Context,
    *,
    number: int,
    message: str | None,
    status: IncidentStatus | None = None,
    impact: Impact | None = None,
    components: Changes = (),
    at: datetime | None = None,
    notify: bool = True,
) -> Result:
    """Post an update: maybe a new status, impact or component states, always a message."""
    usage = words.USAGE["incident update"]
    authorise(ctx, action="incident.update", target=f"#{number}")
    incident = get_incident(session, number, usage, updates=False)
    if status is IncidentStatus.RESOLVED:
        return resolve_incident(session, ctx, number=number, message=message, at=at, notify=notify)
    body = check_message(message, usage, required=True)
    when = check_past(at, ctx, usage) if at is not None else ctx.now
    _check_changes(components, usage)
    current = IncidentStatus(incident.status)
    if current is IncidentStatus.RESOLVED:
        raise CommandError(
            f"#{number} is resolved. Reopen it first with /incident reopen {number}.", usage
        )
    new = status or current
    if not incident_transition_allowed(current, new):  # pragma: no cover - guarded above
        raise CommandError(f"#{number} can't go from {current} to {new}.", usage)
    if impact is Impact.MAINTENANCE:
        raise CommandError("An incident's impact is none, minor, major or critical.", usage)
    before = incident_state(incident)
    if impact is not None:
        incident.impact = impact.value
        incident.impact_override = True
    notices = post_update(
        session,
        ctx,
        incident,
        action="incident.update",
        event="incident.updated",
        status=new.value,
        body=body,
        before=before,
        at=when,
        changes=components,
        notify=notify,
    )
    return Result(
        reply=f"Posted an update to #{number}: {words.status_label(new)}, impact "
        f"{incident.impact}." + _where(ctx, notify),
        changed=True,
        notices=notices,
        number=number,
    )


def resolve_incident(
    session: Session,
    ctx: Context,
    *,
    number: int,
    message: str | None = None,
    at: datetime | None = None,
    notify: bool = True,
) -> Result:
    """Resolve: affected components go back to operational unless something else holds them."""
    usage = words.USAGE["incident resolve"]
    authorise(ctx, action="incident.resolve", target=f"#{number}")
    incident = get_incident(session, number, usage, updates=False)
    if incident.status == IncidentStatus.RESOLVED:
        raise CommandError(f"#{number} is already resolved.", usage)
    body = check_message(message, usage) or DEFAULT_RESOLVED
    when = check_past(at, ctx, usage) if at is not None else ctx.now
    if when < incident.started_at:
        raise CommandError(
            f"#{number} started {words.when(incident.started_at, ctx.tz)}; it can't be resolved "
            "before that.",
            usage,
        )
    before = incident_state(incident)
    live = [a.component for a in incident.affected if a.component.removed_at is None]
    held = store.held_states(session, live, excluding=incident)
    changes = [(c, held[c.id]) for c in live]
    notices = post_update(
        session,
        ctx,
        incident,
        action="incident.resolve",
        event="incident.resolved",
        status=IncidentStatus.RESOLVED.value,
        body=body,
        before=before,
        at=when,
        changes=changes,
        notify=notify,
    )
    return Result(
        reply=f"Resolved #{number} {words.quote(incident.title)}." + _where(ctx, notify),
        changed=True,
        notices=notices,
        number=number,
    )


def reopen_incident(
    session: Session,
    ctx: Context,
    *,
    number: int,
    message: str | None = None,
    notify: bool = True,
) -> Result:
    """Reopen a resolved incident at the status it had before it was resolved."""
    usage = words.USAGE["incident reopen"]
    authorise(ctx, action="incident.reopen", target=f"#{number}")
    incident = get_incident(session, number, usage)
    if incident.status != IncidentStatus.RESOLVED:
        raise CommandError(
            f"#{number} is not resolved (it is {words.status_label(incident.status)}); "
            f"post an update instead with /incident update {number} -- MESSAGE.",
            usage,
        )
    body = check_message(message, usage) or DEFAULT_REOPENED
    earlier = [u.status for u in incident.updates if u.status != IncidentStatus.RESOLVED]
    status = earlier[-1] if earlier else IncidentStatus.INVESTIGATING.value
    before = incident_state(incident)
    notices = post_update(
        session,
        ctx,
        incident,
        action="incident.reopen",
        event="incident.reopened",
        status=status,
        body=body,
        before=before,
        notify=notify,
    )
    return Result(
        reply=f"Reopened #{number} as {words.status_label(status)}. Components were left as "
        f"they are: set them with /incident update {number} --components NAME=STATE -- MESSAGE."
        + _where(ctx, notify),
        changed=True,
        notices=notices,
        number=number,
    )


def edit_title(
    session: Session, ctx: Context, *, number: int, title: str, kind: Kind = Kind.INCIDENT
) -> Result:
    """Fix an incident's (or a maintenance's) title; audited, and the announcement is
    edited to match."""
    usage = words.USAGE["incident edit"]
    authorise(ctx, action=f"{kind.value}.edit", target=f"#{number}")
    incident = _get_kind(session, number, kind, usage)
    title = check_title(title, usage)
    before = incident_state(incident)
    incident.title = title
    incident.updated_at = ctx.now
    audit_change(
        session,
        ctx,
        action=f"{kind.value}.edit",
        target=f"#{number}",
        before=before,
        after=incident_state(incident),
    )
    return Result(
        reply=f"Renamed #{number} to {words.quote(title)}.",
        changed=True,
        notices=(announce(session, ctx, "incident.edited", incident),),
        number=number,
    )


def edit_update(
    session: Session,
    ctx: Context,
    *,
    number: int,
    update: int,
    body: str | None,
    kind: Kind,
    display_at: datetime | None = None,
    deliver_notifications: bool | None = None,
) -> Result:
    """Fix the text of an update (numbered from 1, oldest first), and (from the API) its
    display time or notify flag; audited. A body of None keeps the text."""
    usage = words.USAGE[f"{kind.value} show"]
    authorise(ctx, action=f"{kind.value}.edit", target=f"#{number}")
    incident = store.get(session, number=number, for_update=True)
    if incident is None or incident.kind != kind:
        raise CommandError(f"There is no {kind.value} #{number}.", usage)
    if not 1 <= update <= len(incident.updates):
        raise CommandError(
            f"#{number} has updates 1 to {len(incident.updates)}; there is no update {update}.",
            words.USAGE["incident edit"],
        )
    target = incident.updates[update - 1]
    keep_text = body is None and (display_at is not None or deliver_notifications is not None)
    text = (
        target.body
        if keep_text
        else check_message(body, words.USAGE["incident edit"], required=True)
    )
    before: dict[str, object] = {"update": update, "body": target.body}
    after: dict[str, object] = {"update": update, "body": text}
    if display_at is not None or deliver_notifications is not None:
        before["display_at"] = target.display_at.isoformat()
        before["deliver_notifications"] = target.deliver_notifications
        if display_at is not None:
            target.display_at = check_past(display_at, ctx, words.USAGE["incident edit"])
        if deliver_notifications is not None:
            target.deliver_notifications = deliver_notifications
        after["display_at"] = target.display_at.isoformat()
        after["deliver_notifications"] = target.deliver_notifications
    target.body = text
    target.updated_at = ctx.now
    incident.updated_at = ctx.now
    audit_change(
        session,
        ctx,
        action=f"{kind.value}.edit_update",
        target=f"#{number}",
        before=before,
        after=after,
    )
    return Result(
        reply=f"Edited update {update} of #{number}.",
        changed=True,
        # With the update named, Slack's thread reply that carried it is corrected too.
        notices=(announce(session, ctx, "incident.edited", incident, target),),
        number=number,
    )


def delete_incident(session: Session, ctx: Context, *, number: int, kind: Kind) -> Result:
    """Delete an incident or maintenance and its updates, as Statuspage's DELETE does.

    The components' history keeps its changes (uptime does not move), no longer tied to
    it; announcements not yet delivered are dropped. Audited with what it was.
    """
    usage = words.USAGE[f"{kind.value} show"]
    authorise(ctx, action=f"{kind.value}.delete", target=f"#{number}")
    incident = _get_kind(session, number, kind, usage)
    before = incident_state(incident)
    store.delete(session, incident)
    audit_change(
        session, ctx, action=f"{kind.value}.delete", target=f"#{number}", before=before, after=None
    )
    return Result(
        reply=f"Deleted #{number} {words.quote(before['title'])}.", changed=True, number=number
    )


def _get_kind(session: Session, number: int, kind: Kind, usage: str) -> Incident:
    if kind is Kind.INCIDENT:
        return get_incident(session, number, usage, drafts=True)
    found = store.get(session, number=number, for_update=True)
    if found is None or found.kind != kind:
        raise CommandError(f"There is no maintenance #{number}. See /maintenance list.", usage)
    return found


def _where(ctx: Context, notify: bool) -> str:
    if not notify:
        return words.NOT_ANNOUNCED
    if not ctx.notify_channels:
        return ""
    return " Announced in " + ", ".join(f"<#{c}>" for c in ctx.notify_channels) + "."
