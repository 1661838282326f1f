"""Postmortems (SPEC §12): one per incident, a draft until published.

Only a published postmortem leaves the database for the page, the JSON or a
subscriber; `published` is what the snapshot reads.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Incident, Postmortem


def of(session: Session, incident: Incident) -> Postmortem | None:
    """The incident's postmortem, published or not."""
    return session.scalars(select(Postmortem).where(Postmortem.incident_id == incident.id)).first()


def save(
    session: Session, incident: Incident, *, body: str, actor: str, now: datetime
) -> Postmortem:
    """Write the postmortem's text (a new draft, or a new text for the one there is)."""
    found = of(session, incident)
    if found is None:
        found = Postmortem(
            incident_id=incident.id, body=body, author=actor, created_at=now, body_updated_at=now
        )
        session.add(found)
    else:
        found.body = body
        found.author = actor
        found.body_updated_at = now
    session.flush()
    return found


def published(
    session: Session, incident_ids: Collection[int] | None = None
) -> dict[int, Postmortem]:
    """Published postmortems by incident id (of these incidents, or all)."""
    stmt = select(Postmortem).where(Postmortem.published_at.is_not(None))
    if incident_ids is not None:
        stmt = stmt.where(Postmortem.incident_id.in_(sorted(incident_ids)))
    return {p.incident_id: p for p in session.scalars(stmt)}


# What tells a published postmortem's changes apart: its incident id, then its times.
SIGNATURES = select(
    Postmortem.incident_id,
    Postmortem.published_at,
    Postmortem.body_updated_at,
    Postmortem.notified_at,
).where(Postmortem.published_at.is_not(None))


def signatures_of(rows: Iterable[Sequence[Any]]) -> dict[int, tuple[object, ...]]:
    """Per incident id with a published postmortem, what tells a changed one apart, from
    the rows of SIGNATURES (as the driver reads them: they are only ever compared with
    signatures read the same way)."""
    return {iid: (a, b, c) for iid, a, b, c in rows}


@dataclass(frozen=True, slots=True)
class Record:
    """A postmortem as its editors (and the v1 API's key holders) see it, draft or not."""

    body: str
    created_at: datetime
    body_updated_at: datetime
    published_at: datetime | None
    notified_at: datetime | None


def record(postmortem: Postmortem) -> Record:
    """The postmortem row as frozen values."""
    return Record(
        body=postmortem.body,
        created_at=postmortem.created_at,
        body_updated_at=postmortem.body_updated_at,
        published_at=postmortem.published_at,
        notified_at=postmortem.notified_at,
    )
