"""The seen-request window: signed Slack requests taken in while their signature is valid.

Every process shares it (it is the database), so a request replayed to another
web worker, or retried by Slack, is recognised too. Taking a request in is one
INSERT that does nothing on a conflict: no read first, no race between readers.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, text
from sqlalchemy.orm import Session

from storage.models import SeenRequest

# Written out, because SQLAlchemy never caches a statement with ON CONFLICT: built
# with its insert() construct, this one was compiled afresh for every Slack request.
_FIRST_TIME = text(
    "INSERT INTO seen_requests (key, expires_at) VALUES (:key, :expires_at) "
    "ON CONFLICT (key) DO NOTHING RETURNING key"
).bindparams(bindparam("expires_at", type_=SeenRequest.__table__.c.expires_at.type))
_ASYNC_COMMIT = text("SET LOCAL synchronous_commit TO OFF")


def first_time(session: Session, *, key: str, expires_at: datetime, alone: bool = True) -> bool:
    """Remember `key` until `expires_at`; False when it was remembered already.

    One INSERT that does nothing on a conflict and returns a row only when it
    inserted (rowcount is unreliable here), on SQLite and PostgreSQL alike. `alone`:
    the transaction writes nothing else (not so when a command's own transaction
    takes its request in), so its commit need not wait for the WAL.
    """
    if alone and session.get_bind().dialect.name == "postgresql":
        # The ack need not wait for this row's own WAL flush: the command that follows
        # commits synchronously, and PostgreSQL's WAL is flushed in order, so that
        # commit makes this row durable too. A crash in between loses only a request
        # whose command never ran, and that one may well be applied when it comes again.
        session.execute(_ASYNC_COMMIT)
    row = session.execute(_FIRST_TIME, {"key": key, "expires_at": expires_at})
    return row.scalar_one_or_none() is not None


def forget_expired(session: Session, *, now: datetime) -> int:
    """Drop the requests whose signatures can no longer be replayed; how many."""
    stmt = delete(SeenRequest).where(SeenRequest.expires_at < now)
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
