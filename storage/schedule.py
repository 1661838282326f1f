"""What the clock must do now: queries for due maintenance windows and quiet incidents."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Incident, IncidentUpdate
from storage.rules import IncidentStatus, Kind, MaintenanceStatus

ACTIVE = (MaintenanceStatus.IN_PROGRESS.value, MaintenanceStatus.VERIFYING.value)


def due_to_start(session: Session, *, now: datetime) -> list[int]:
    """Numbers of automatic maintenances whose start has come and that haven't started."""
    stmt = (
        select(Incident.number)
        .where(
            Incident.kind == Kind.MAINTENANCE.value,
            Incident.auto.is_(True),
            Incident.status == MaintenanceStatus.SCHEDULED.value,
            Incident.scheduled_for <= now,
        )
        .order_by(Incident.scheduled_for, Incident.number)
    )
    return list(session.scalars(stmt))


def due_to_complete(session: Session, *, now: datetime) -> list[int]:
    """Numbers of automatic maintenances in progress whose end has come."""
    stmt = (
        select(Incident.number)
        .where(
            Incident.kind == Kind.MAINTENANCE.value,
            Incident.auto.is_(True),
            Incident.status.in_(ACTIVE),
            Incident.scheduled_until <= now,
        )
        .order_by(Incident.scheduled_until, Incident.number)
    )
    return list(session.scalars(stmt))


def due_for_notice(session: Session, *, now: datetime, notice: timedelta) -> list[int]:
    """Scheduled maintenances starting within `notice` whose advance notice hasn't gone out."""
    stmt = (
        select(Incident.number)
        .where(
            Incident.kind == Kind.MAINTENANCE.value,
            Incident.status == MaintenanceStatus.SCHEDULED.value,
            Incident.notice_sent_at.is_(None),
            Incident.scheduled_for > now,
            Incident.scheduled_for <= now + notice,
        )
        .order_by(Incident.scheduled_for, Incident.number)
    )
    return list(session.scalars(stmt))


def quiet_incidents(
    session: Session, *, now: datetime, stale_after: timedelta, max_nudges: int
) -> list[int]:
    """Open incidents with no update for `stale_after`, not nudged in that time either."""
    last_update = (
        select(IncidentUpdate.incident_id, func.max(IncidentUpdate.created_at).label("last"))
        .group_by(IncidentUpdate.incident_id)
        .subquery()
    )
    cutoff = now - stale_after
    stmt = (
        select(Incident.number)
        .join(last_update, last_update.c.incident_id == Incident.id)
        .where(
            Incident.kind == Kind.INCIDENT.value,
            Incident.status != IncidentStatus.RESOLVED.value,
            Incident.draft.is_(False),  # a draft is being prepared, not left quiet
            last_update.c.last <= cutoff,
            (Incident.nudged_at.is_(None)) | (Incident.nudged_at <= cutoff),
            Incident.nudge_count < max_nudges,
        )
        .order_by(Incident.number)
    )
    return list(session.scalars(stmt))
