"""The audit log: who changed what, when, with the before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from storage.models import AuditEvent, Base


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Add one audit event to the caller's transaction (an INSERT, not an ORM object:
    nothing reads it back there)."""
    row = {"actor": actor, "action": action, "target": target, "at": at, "before": before}
    session.execute(_INSERT, [row | {"after": after}])


# Into the table, not the mapped class: the ORM's bulk INSERT works out the statement's
# cache key anew on every call, which cost more than the INSERT itself. Nothing it
# refers to can be pending, so there is nothing to flush first either.
_INSERT = insert(Base.metadata.tables[AuditEvent.__tablename__])


def recent(session: Session, *, limit: int = 50) -> list[AuditEvent]:
    """The newest audit events first."""
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    return list(session.scalars(stmt))
