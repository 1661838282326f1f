"""What one Slack outbox entry's delivery needs, read in one transaction: the entry,
its incident's view, the announcement's ts, the thread reply an edit corrects, and
whether a newer entry will edit the announcement anyway (bot/slack/delivery.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session, aliased

from bot.slack.events import EDIT_EVENT, NOTE_EVENTS, REPLY_EVENTS
from storage import incidents as incident_store
from storage.models import Announcement, OutboxEntry
from storage.snapshot import IncidentView, UpdateView, incident_view


@dataclass(frozen=True, slots=True)
class Job:
    """One outbox entry and everything needed to send it, read in one transaction."""

    id: int
    channel: str
    event: str
    incident_id: int | None
    payload: dict[str, Any]
    attempts: int
    view: IncidentView | None
    update: UpdateView | None
    announcement_ts: str | None
    superseded: bool  # a newer entry of the same incident and channel will edit it anyway
    edited_reply_ts: str | None = None  # the thread reply an edit corrects
    # An earlier attempt may have posted without recording it: ask Slack before posting.
    uncertain: bool = False
    # When uncertain, the ts of the latest reply we posted in this thread before it:
    # Slack is asked for what came after (a thread is listed oldest first).
    last_reply_ts: str | None = None


def _reply_ts(
    session: Session, entry: OutboxEntry, *where: ColumnElement[bool], latest: bool = False
) -> str | None:
    """The ts of the first (or `latest`) thread reply posted in `entry`'s channel that
    an outbox entry matching `where` recorded."""
    return session.scalar(
        select(OutboxEntry.message_ts)
        .where(
            OutboxEntry.channel == entry.channel,
            OutboxEntry.event.in_(REPLY_EVENTS),
            OutboxEntry.message_ts.is_not(None),
            *where,
        )
        .order_by(OutboxEntry.id.desc() if latest else OutboxEntry.id)
        .limit(1)
    )


def load_job(session: Session, entry_id: int, token: str, *, stale: bool) -> Job | None:
    """Entry `entry_id`, if `token` still holds its claim and it is not delivered, with
    everything its delivery needs, read in `session` (one transaction); else None.
    `stale`: an earlier claim of it ran out, so it may have been posted already."""
    entry = session.get(OutboxEntry, entry_id)
    if entry is None or entry.claimed_by != token or entry.delivered_at is not None:
        return None
    view: IncidentView | None = None
    reply: UpdateView | None = None
    ts: str | None = None
    edited_ts: str | None = None
    superseded = False
    if entry.incident_id is not None:
        incident = incident_store.get_by_id(session, entry.incident_id)
        view = incident_view(incident) if incident is not None else None
        if incident is not None and view is not None and entry.update_id is not None:
            code = next((u.code for u in incident.updates if u.id == entry.update_id), None)
            reply = next((u for u in view.updates if u.code == code), None)
        ts = session.scalar(
            select(Announcement.ts).where(
                Announcement.incident_id == entry.incident_id,
                Announcement.channel == entry.channel,
            )
        )
        if entry.event == EDIT_EVENT and entry.update_id is not None:
            edited_ts = _reply_ts(session, entry, OutboxEntry.update_id == entry.update_id)
        newer = aliased(OutboxEntry)
        superseded = bool(
            session.scalar(
                select(
                    exists().where(
                        newer.channel == entry.channel,
                        newer.incident_id == entry.incident_id,
                        newer.id > entry.id,
                        newer.delivered_at.is_(None),
                        newer.failed_at.is_(None),
                        newer.event.not_in(NOTE_EVENTS),
                    )
                )
            )
        )
    uncertain = stale or entry.attempts > 0
    last_reply_ts = None
    if uncertain and entry.event in REPLY_EVENTS and entry.incident_id is not None:
        last_reply_ts = _reply_ts(
            session,
            entry,
            OutboxEntry.incident_id == entry.incident_id,
            OutboxEntry.id < entry.id,
            latest=True,
        )
    return Job(
        id=entry.id,
        channel=entry.channel,
        event=entry.event,
        incident_id=entry.incident_id,
        payload=dict(entry.payload or {}),
        attempts=entry.attempts,
        view=view,
        update=reply,
        announcement_ts=ts,
        superseded=superseded,
        edited_reply_ts=edited_ts,
        uncertain=uncertain,
        last_reply_ts=last_reply_ts,
    )
