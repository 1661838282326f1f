"""The outbox: notifications written with their change, delivered afterwards.

Entries form lines, one per channel and incident (entries without an incident,
such as component changes, form one line per channel). Only the head of a line,
its oldest entry not yet delivered nor given up on, may be sent: that keeps an
incident's messages in order. These queries stay cheap however long the
backlog or the history grows: the pending entries have a partial index of their
own (`ix_outbox_line`), and delivered entries are purged after a while.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Update,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, aliased

from storage.models import Base, OutboxEntry


class Kind:
    """Who delivers an entry; each deliverer reads only its own kind's lines."""

    SLACK = "slack"  # a message in a Slack channel (`channel` is its id)
    FANOUT = "fanout"  # one notification to expand into an entry per subscriber
    EMAIL = "email"  # a mail to one subscriber (`channel` is its code)
    WEBHOOK = "webhook"  # a POST to one subscriber's URL (`channel` is its code)


KINDS = (Kind.SLACK, Kind.FANOUT, Kind.EMAIL, Kind.WEBHOOK)
FANOUT_LINE = "subscribers"  # the one line of fan-out entries


def enqueue(
    session: Session,
    *,
    channels: Iterable[str],
    event: str,
    at: datetime,
    incident_id: int | None = None,
    update_id: int | None = None,
    payload: dict[str, Any] | None = None,
    kind: str = Kind.SLACK,
    into: list[dict[str, Any]] | None = None,
) -> list[int]:
    """Queue one notification per channel (or subscriber) in the caller's transaction;
    the new entries' ids, in the order of `channels`. With `into`, the entries' rows
    are added to that list instead (and no ids returned), for a caller that queues
    several notifications and writes them all with one `add`.

    One INSERT, not ORM objects: nothing reads the entries back in the transaction
    that writes them, and a command's flush is most of its CPU.
    """
    rows = [
        {
            "kind": kind,
            "channel": channel,
            "event": event,
            "created_at": at,
            "next_attempt_at": at,
            "incident_id": incident_id,
            "update_id": update_id,
            "payload": payload or {},
            "attempts": 0,
        }
        for channel in channels
    ]
    if into is not None:
        into.extend(rows)
        return []
    return add(session, rows)


def add(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Write the rows that `enqueue(..., into=rows)` gathered, in one INSERT; their ids."""
    if not rows:
        return []
    return list(session.scalars(_ENQUEUE, rows))


# Into the table, not the mapped class: the ORM's bulk INSERT works out the statement's
# cache key anew on every call. The rows an entry refers to (incident, update) have ids,
# so they are flushed already.
_TABLE = Base.metadata.tables[OutboxEntry.__tablename__]
_ENQUEUE = insert(_TABLE).returning(_TABLE.c.id, sort_by_parameter_order=True)


def pending(session: Session, *, limit: int = 100, kind: str = Kind.SLACK) -> list[OutboxEntry]:
    """Notifications still to deliver (not delivered, not given up on), oldest first."""
    stmt = (
        select(OutboxEntry)
        .where(OutboxEntry.kind == kind, *_pending(OutboxEntry))
        .order_by(OutboxEntry.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def backlog(session: Session) -> dict[str, tuple[int, datetime | None]]:
    """Per kind: how many entries are pending, and when the oldest of them was written."""
    rows = session.execute(
        select(OutboxEntry.kind, func.count(), func.min(OutboxEntry.created_at))
        .where(*_pending(OutboxEntry))
        .group_by(OutboxEntry.kind)
    )
    return {kind: (int(count), oldest) for kind, count, oldest in rows}


@dataclass(frozen=True, slots=True)
class Head:
    """The oldest entry still to send in its line: the one that may go next."""

    id: int
    channel: str
    incident_id: int | None
    # A deliverer claimed it before and its lease ran out (it died, or could not record
    # what it sent): Slack may already have its message.
    stale: bool = False


def due(session: Session, *, now: datetime, limit: int, kind: str = Kind.SLACK) -> list[Head]:
    """Entries that may be sent now, oldest first: heads of their line, due, unclaimed.

    The heads come from one pass over the pending entries (grouped by line), so a
    backlog of thousands costs a few milliseconds, not a comparison of every
    pending entry with every other.
    """
    rows = session.execute(_due_statement(str(kind), limit), {"d_now": now})
    return [Head(entry, channel, incident, bool(stale)) for entry, channel, incident, stale in rows]


@functools.cache
def _due_statement(kind: str, limit: int) -> Select[tuple[int, str, int | None, bool]]:
    """due()'s SELECT, built once per kind and limit: every change pokes each deliverer,
    and building the statement anew (and working out its cache key) cost more than
    running it."""
    now: BindParameter[datetime] = bindparam("d_now", type_=OutboxEntry.next_attempt_at.type)
    heads = (
        select(func.min(OutboxEntry.id))
        .where(OutboxEntry.kind == kind, *_pending(OutboxEntry))
        .group_by(OutboxEntry.channel, OutboxEntry.incident_id)
    )
    return (
        select(
            OutboxEntry.id,
            OutboxEntry.channel,
            OutboxEntry.incident_id,
            OutboxEntry.claimed_by.is_not(None),
        )
        .where(OutboxEntry.id.in_(heads), *_sendable(now))
        .order_by(OutboxEntry.id)
        .limit(limit)
    )


def claim(
    session: Session,
    head: Head,
    *,
    now: datetime,
    until: datetime,
    token: str,
    kind: str = Kind.SLACK,
) -> bool:
    """Take an entry for a deliverer until `until`, if it may still be sent; whether we got it.

    A conditional UPDATE: of several deliverers racing for one entry, one wins,
    on SQLite and on PostgreSQL alike. It checks again that nothing is ahead of
    the entry in its line (one probe of ix_outbox_line).
    """
    params = {"b_id": head.id, "b_channel": head.channel, "b_kind": kind}
    params |= {"b_now": now, "b_until": until, "b_token": token, "b_incident": head.incident_id}
    result = session.execute(_claim_statement(head.incident_id is None), params)
    return int(getattr(result, "rowcount", 0) or 0) == 1


@functools.cache
def _claim_statement(no_incident: bool) -> Update:
    """claim()'s UPDATE, built once with bound parameters: a fan-out's thousands of claims
    reuse its compiled form instead of building and compiling it each time."""
    older = aliased(OutboxEntry)
    same_incident = (
        older.incident_id.is_(None) if no_incident else older.incident_id == bindparam("b_incident")
    )
    ahead = exists().where(
        older.kind == bindparam("b_kind"),
        *_pending(older),
        older.channel == bindparam("b_channel"),
        same_incident,
        older.id < bindparam("b_id"),
    )
    now: BindParameter[datetime] = bindparam("b_now", type_=OutboxEntry.next_attempt_at.type)
    return (
        update(OutboxEntry)
        .where(OutboxEntry.id == bindparam("b_id"), *_pending(OutboxEntry), *_sendable(now), ~ahead)
        .values(claimed_until=bindparam("b_until"), claimed_by=bindparam("b_token"))
        .execution_options(synchronize_session=False)
    )


def claim_many(
    session: Session,
    heads: Sequence[Head],
    *,
    now: datetime,
    until: datetime,
    token: str,
    kind: str = Kind.SLACK,
) -> None:
    """Take many entries for a deliverer until `until` at once: claim()'s conditions in
    one UPDATE per kind of line (with and without an incident). Which were won: the
    entries now claimed by `token`.

    "Still the head of its line" is asked of each entry as a scalar subquery (the
    oldest pending id of the entry's own line equals its id), which PostgreSQL runs as
    one ix_outbox_line probe per entry whatever its statistics say. A NOT EXISTS
    there is turned into an anti-join instead, and planned against statistics taken
    before a fan-out's 11,000 rows it compared every entry with every pending one
    (2,000,000 rows filtered, 1.8 s a batch of 200); the scalar form takes ~10 ms."""
    base = {"b_now": now, "b_until": until, "b_token": token}
    postgresql = session.get_bind().dialect.name == "postgresql"
    for no_incident in (True, False):
        ids = [h.id for h in heads if (h.incident_id is None) is no_incident]
        if ids and postgresql:
            # Lock the rows first, in id order, skipping those another deliverer is
            # writing: the UPDATE then never waits, so two deliverers whose batches
            # overlap cannot deadlock (as the two-server test once did).
            ids = list(session.scalars(_LOCK_FREE, {"l_ids": ids}))
        if ids:
            session.execute(_claim_many_statement(no_incident), {**base, "b_ids": ids})


_LOCK_FREE = (
    select(OutboxEntry.id)
    .where(OutboxEntry.id.in_(bindparam("l_ids", expanding=True)))
    .order_by(OutboxEntry.id)
    .with_for_update(skip_locked=True)
)


@functools.cache
def _claim_many_statement(no_incident: bool) -> Update:
    older = aliased(OutboxEntry)
    same_incident = (
        older.incident_id.is_(None) if no_incident else older.incident_id == OutboxEntry.incident_id
    )
    head = (
        select(func.min(older.id))
        .where(
            older.kind == OutboxEntry.kind,
            older.channel == OutboxEntry.channel,
            same_incident,
            *_pending(older),
        )
        .scalar_subquery()
    )
    now: BindParameter[datetime] = bindparam("b_now", type_=OutboxEntry.next_attempt_at.type)
    return (
        update(OutboxEntry)
        .where(
            # The ids alone pick the rows (by primary key): a condition on `kind` here
            # lets stale statistics choose a scan of the kind's whole index instead.
            OutboxEntry.id.in_(bindparam("b_ids", expanding=True)),
            *_pending(OutboxEntry),
            *_sendable(now),
            OutboxEntry.id == head,
        )
        .values(claimed_until=bindparam("b_until"), claimed_by=bindparam("b_token"))
        .execution_options(synchronize_session=False)
    )


def refresh_statistics(session: Session) -> None:
    """Bring PostgreSQL's statistics of the outbox up to date (nothing on SQLite).

    A fan-out writes thousands of entries at once; until autovacuum notices (a minute
    or more), the planner plans `due` for the table as it was, nearly empty, and its
    GROUP BY over the pending entries takes 60 ms a pass instead of 13. ANALYZE of the
    outbox samples at most 30,000 rows, so it costs tens of milliseconds however large
    the table."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE outbox"))


def purge_delivered(session: Session, *, before: datetime) -> int:
    """Delete entries delivered before `before`; how many. Pending and failed ones stay."""
    result = session.execute(
        delete(OutboxEntry)
        .where(OutboxEntry.delivered_at.is_not(None), OutboxEntry.delivered_at < before)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _pending(entry: type[OutboxEntry]) -> tuple[ColumnElement[bool], ...]:
    """Not delivered and not given up on: the condition of the partial index ix_outbox_line."""
    return (entry.delivered_at.is_(None), entry.failed_at.is_(None))


def _sendable(now: datetime | BindParameter[datetime]) -> tuple[ColumnElement[bool], ...]:
    """Its time has come (no retry pending) and no deliverer holds a live lease on it."""
    return (
        OutboxEntry.next_attempt_at <= now,
        or_(OutboxEntry.claimed_until.is_(None), OutboxEntry.claimed_until < now),
    )
