"""The outbox: notifications written with their change, delivered afterwards."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import OutboxEntry


def enqueue(
    session: Session,
    *,
    channels: Iterable[str],
    event: str,
    at: datetime,
    incident_id: int | None = None,
    update_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> list[OutboxEntry]:
    """Queue one notification per channel in the caller's transaction."""
    entries = [
        OutboxEntry(
            channel=channel,
            event=event,
            created_at=at,
            next_attempt_at=at,
            incident_id=incident_id,
            update_id=update_id,
            payload=payload or {},
        )
        for channel in channels
    ]
    session.add_all(entries)
    return entries


def pending(session: Session, *, limit: int = 100) -> list[OutboxEntry]:
    """Notifications still to deliver (not delivered, not given up on), oldest first."""
    stmt = (
        select(OutboxEntry)
        .where(OutboxEntry.delivered_at.is_(None), OutboxEntry.failed_at.is_(None))
        .order_by(OutboxEntry.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))
