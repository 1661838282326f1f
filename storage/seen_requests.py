"""The seen-request window: signed Slack requests taken in while their signature is valid.

Every process shares it (it is the database), so a request replayed to another
web worker, or retried by Slack, is recognised too. Taking a request in is one
INSERT that does nothing on a conflict: no read first, no race between readers.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import SeenRequest


def first_time(session: Session, *, key: str, expires_at: datetime) -> bool:
    """Remember `key` until `expires_at`; False when it was remembered already."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    if dialect == "postgresql":
        # The ack need not wait for this row's own WAL flush: the command that follows
        # commits synchronously, and PostgreSQL's WAL is flushed in order, so that
        # commit makes this row durable too. A crash in between loses only a request
        # whose command never ran, and that one may well be applied when it comes again.
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    stmt = (
        insert(SeenRequest)
        .values(key=key, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=[SeenRequest.key])
        .returning(SeenRequest.key)  # a row only when inserted (rowcount is unreliable here)
    )
    return session.execute(stmt).scalar_one_or_none() is not None


def forget_expired(session: Session, *, now: datetime) -> int:
    """Drop the requests whose signatures can no longer be replayed; how many."""
    stmt = delete(SeenRequest).where(SeenRequest.expires_at < now)
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
