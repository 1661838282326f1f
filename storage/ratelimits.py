"""Rate limits shared by every process: a count per key in a fixed window, in the database.

Counting is one UPSERT that starts a new window when the old one has passed and
adds one otherwise, and returns the count and the window's start: no read first,
so two web workers counting the same client at once cannot both see "under".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, bindparam, delete, text
from sqlalchemy.orm import Session

from storage.models import RateLimit


@dataclass(frozen=True, slots=True)
class Count:
    """How often a key was counted in its window, and when that window ends."""

    count: int
    resets_at: datetime


# Written out, because SQLAlchemy never caches a statement with ON CONFLICT: built with
# its insert() construct, this was compiled afresh for every API request. A window that
# began one window ago or more (or, after the clock stepped back, in the future) is
# over: this hit opens a new one. Both SET expressions read the row as it was.
_STALE = "rate_limits.window_start <= :over_before OR rate_limits.window_start > :now"
_HIT = (
    text(
        "INSERT INTO rate_limits (key, window_start, count) VALUES (:key, :now, 1) "
        "ON CONFLICT (key) DO UPDATE SET "
        f"window_start = CASE WHEN {_STALE} THEN :now ELSE rate_limits.window_start END, "
        f"count = CASE WHEN {_STALE} THEN 1 ELSE rate_limits.count + 1 END "
        "RETURNING count, window_start"
    )
    .bindparams(
        bindparam("now", type_=RateLimit.__table__.c.window_start.type),
        bindparam("over_before", type_=RateLimit.__table__.c.window_start.type),
    )
    .columns(count=Integer, window_start=RateLimit.__table__.c.window_start.type)
)


def hit(session: Session, *, key: str, window: timedelta, now: datetime) -> Count:
    """Count one more for `key` in the caller's transaction; the count includes this one."""
    found = session.execute(_HIT, {"key": key, "now": now, "over_before": now - window})
    count, start = found.one()
    return Count(int(count), start + window)


def forget_expired(session: Session, *, before: datetime) -> int:
    """Drop the counts whose windows began before `before`; how many."""
    stmt = delete(RateLimit).where(RateLimit.window_start < before)
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
