"""Drafts (SPEC §12): an incident prepared in Slack, then made public, or dropped.

A draft is opened by `commands.incident.open_incident(draft=True)`: numbered from
the one sequence, announced in Slack marked DRAFT, and invisible to everything
public (the snapshot leaves drafts out; announcements of a draft never fan out).
Publishing applies the component states it waited with and makes it read as if
it was opened at that moment.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from commands import words
from commands.common import announce, audit_change, authorise, check_message, incident_state
from commands.context import Context
from commands.errors import CommandError
from commands.incident import get_incident
from commands.result import Result
from storage import incidents as store
from storage.models import Incident
from storage.rules import Cause


def _draft(session: Session, number: int, usage: str) -> Incident:
    incident = get_incident(session, number, usage, drafts=True)
    if not incident.draft:
        raise CommandError(f"#{number} is not a draft: it is public already.", usage)
    return incident


def publish_draft(
    session: Session, ctx: Context, *, number: int, message: str | None = None, notify: bool = True
) -> Result:
    """Make draft `number` public now: its states applied, opened (on the page) now, and
    announced to the channels and subscribers as an opening (unless `notify` is off)."""
    usage = words.USAGE["incident publish"]
    authorise(ctx, action="incident.publish", target=f"#{number}")
    incident = _draft(session, number, usage)
    body = check_message(message, usage)
    before = incident_state(incident)
    changes = store.pending_states(incident)
    # The draft's opening update becomes the public one, with the publication's time.
    opening = incident.updates[0]
    if body:
        opening.body = body
    opening.display_at = opening.created_at = opening.updated_at = ctx.now
    opening.deliver_notifications = notify
    for later in incident.updates[1:]:  # pragma: no cover - a draft takes no updates
        later.display_at = ctx.now
    incident.draft = False
    incident.draft_components = None
    incident.created_at = incident.started_at = ctx.now
    store.apply_changes(session, incident, opening, changes, cause=Cause.INCIDENT, actor=ctx.actor)
    store.settle(incident, status=incident.status, display_at=ctx.now, now=ctx.now)
    session.flush()
    audit_change(
        session,
        ctx,
        action="incident.publish",
        target=f"#{number}",
        before=before,
        after=incident_state(incident) | {"message": opening.body},
    )
    if notify:
        # Slack edits the DRAFT announcement and posts the opening in its thread;
        # subscribers hear of an incident opened now.
        notice = announce(
            session, ctx, "incident.published", incident, opening, fanout_event="incident.opened"
        )
        where = words.PUBLISHED_TOLD
    else:
        # Told nobody, but the announcement must stop saying DRAFT.
        notice = announce(session, ctx, "incident.edited", incident)
        where = words.NOT_ANNOUNCED
    return Result(
        reply=words.PUBLISHED.format(number=number, title=words.quote(incident.title)) + where,
        changed=True,
        notices=(notice,),
        number=number,
    )


def discard_draft(session: Session, ctx: Context, *, number: int) -> Result:
    """Drop draft `number`: it keeps its row (and number) for the audit trail, marked
    discarded, and its announcement says so."""
    usage = words.USAGE["incident discard"]
    authorise(ctx, action="incident.discard", target=f"#{number}")
    incident = _draft(session, number, usage)
    before = incident_state(incident)
    incident.discarded_at = ctx.now
    incident.updated_at = ctx.now
    audit_change(
        session,
        ctx,
        action="incident.discard",
        target=f"#{number}",
        before=before,
        after=incident_state(incident) | {"discarded": True},
    )
    return Result(
        reply=words.DISCARDED.format(number=number, title=words.quote(incident.title)),
        changed=True,
        notices=(announce(session, ctx, "incident.discarded", incident),),
        number=number,
    )
