"""Rate limits shared by every process: a count per key in a fixed window, in the database.

Counting is one UPSERT that starts a new window when the old one has passed and
adds one otherwise, and returns the count and the window's start: no read first,
so two web workers counting the same client at once cannot both see "under".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import RateLimit


@dataclass(frozen=True, slots=True)
class Count:
    """How often a key was counted in its window, and when that window ends."""

    count: int
    resets_at: datetime


def hit(session: Session, *, key: str, window: timedelta, now: datetime) -> Count:
    """Count one more for `key` in the caller's transaction; the count includes this one."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(RateLimit).values(key=key, window_start=now, count=1)
    # A window that began one window ago or more (or, after the clock stepped back,
    # in the future) is over: this hit opens a new one.
    stale = (RateLimit.window_start <= now - window) | (RateLimit.window_start > now)
    upsert = stmt.on_conflict_do_update(
        index_elements=[RateLimit.key],
        set_={
            "window_start": case((stale, now), else_=RateLimit.window_start),
            "count": case((stale, 1), else_=RateLimit.count + 1),
        },
    ).returning(RateLimit.count, RateLimit.window_start)
    count, start = session.execute(upsert).one()
    return Count(int(count), start + window)


def forget_expired(session: Session, *, before: datetime) -> int:
    """Drop the counts whose windows began before `before`; how many."""
    stmt = delete(RateLimit).where(RateLimit.window_start < before)
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
