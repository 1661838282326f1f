"""Internal notes on an incident (SPEC §12): kept for the team, never published."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Incident, IncidentNote


def add(
    session: Session, incident: Incident, *, body: str, author: str, at: datetime
) -> IncidentNote:
    """Keep a note on `incident` in the caller's transaction."""
    note = IncidentNote(incident_id=incident.id, body=body, author=author, created_at=at)
    session.add(note)
    session.flush()
    return note


def of(session: Session, incident: Incident) -> list[IncidentNote]:
    """An incident's notes, oldest first."""
    stmt = (
        select(IncidentNote)
        .where(IncidentNote.incident_id == incident.id)
        .order_by(IncidentNote.id)
    )
    return list(session.scalars(stmt))
