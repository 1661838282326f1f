"""Internal notes (SPEC §12): a word for the team in the announcement's thread.

A note is audited and posted in Slack (through the outbox, like every
announcement) and is nothing else: it is not an update, so the page, the JSON,
the feeds, emails and webhooks, which are all built from updates, never see it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from commands import words
from commands.common import audit_change, authorise, check_message
from commands.context import Context
from commands.incident import get_incident
from commands.result import Notice, Result
from storage import notes as store
from storage import outbox
from storage.escaping import escape

NOTE_EVENT = "incident.note"


def add_note(session: Session, ctx: Context, *, number: int, text: str | None) -> Result:
    """Post an internal note on incident `number` (a draft too): audited, Slack only."""
    usage = words.USAGE["incident note"]
    authorise(ctx, action="incident.note", target=f"#{number}")
    incident = get_incident(session, number, usage, drafts=True)
    body = check_message(text, usage, required=True, what="the note")
    note = store.add(session, incident, body=body, author=ctx.actor, at=ctx.now)
    audit_change(
        session,
        ctx,
        action="incident.note",
        target=f"#{number}",
        before=None,
        after={"note": body, "note_id": note.id},
    )
    # Slack's lines only: a note is never fanned out to subscribers.
    outbox.enqueue(
        session,
        channels=ctx.notify_channels,
        event=NOTE_EVENT,
        at=ctx.now,
        incident_id=incident.id,
        payload={"number": number, "note": body, "author": ctx.actor},
    )
    where = words.NOTE_WHERE if ctx.notify_channels else ""
    return Result(
        reply=f"Noted on #{number} (internal: never on the status page).{where}",
        changed=True,
        notices=(Notice(event=NOTE_EVENT, number=number, text=f"#{number} note: {escape(body)}"),),
        number=number,
    )
