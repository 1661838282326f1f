"""What an import from Statuspage remembers and rewrites (SPEC §11).

The id map (`statuspage_ids`) says which row each Statuspage object became, so a
second run finds and updates it. The component history an import writes is its
own (actor `IMPORT_ACTOR`): a later run replaces it as a whole when the source
says something else, and leaves history written by people alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from storage.models import StatusChange, StatuspageId, Subscriber

IMPORT_ACTOR = "statuspage-import"
KINDS = ("group", "component", "incident", "update", "subscriber", "template", "postmortem")


class IdMap:
    """One page's Statuspage ids → our row ids, read once, written as rows are made."""

    def __init__(self, session: Session, page_id: str) -> None:
        self.session = session
        self.page_id = page_id
        self._ids: dict[tuple[str, str], int] = {
            (row.kind, row.statuspage_id): row.local_id
            for row in session.scalars(select(StatuspageId).where(StatuspageId.page_id == page_id))
        }

    def get(self, kind: str, statuspage_id: str) -> int | None:
        """Our row id for this Statuspage object, if an import made (or adopted) it."""
        return self._ids.get((kind, statuspage_id))

    def put(self, kind: str, statuspage_id: str, local_id: int, *, now: datetime) -> None:
        """Remember that this Statuspage object is our row `local_id`."""
        if kind not in KINDS:
            raise ValueError(f"unknown imported kind {kind!r}")
        key = (kind, statuspage_id)
        if key in self._ids:
            if self._ids[key] != local_id:
                row = self.session.scalars(
                    select(StatuspageId).where(
                        StatuspageId.page_id == self.page_id,
                        StatuspageId.kind == kind,
                        StatuspageId.statuspage_id == statuspage_id,
                    )
                ).one()
                row.local_id = local_id
                self._ids[key] = local_id
            return
        self.session.add(
            StatuspageId(
                page_id=self.page_id,
                kind=kind,
                statuspage_id=statuspage_id,
                local_id=local_id,
                imported_at=now,
            )
        )
        self._ids[key] = local_id

    def local_ids_query(self, kind: str) -> Select[tuple[int]]:
        """The rows of a kind this page's imports made, as a subquery to select by."""
        return select(StatuspageId.local_id).where(
            StatuspageId.page_id == self.page_id, StatuspageId.kind == kind
        )

    def local_ids(self, kind: str) -> list[int]:
        """Every row of a kind this page's imports made."""
        return [local for (k, _), local in self._ids.items() if k == kind]


def incident_for(session: Session, statuspage_id: str) -> int | None:
    """The row id of the incident an imported Statuspage incident id became (any page)."""
    return session.scalar(
        select(StatuspageId.local_id).where(
            StatuspageId.kind == "incident", StatuspageId.statuspage_id == statuspage_id
        )
    )


def subscriber_by_external_id(session: Session, external_id: str) -> Subscriber | None:
    """The live subscriber an earlier import made from this Statuspage subscriber."""
    stmt = select(Subscriber).where(
        Subscriber.external_id == external_id, Subscriber.unsubscribed_at.is_(None)
    )
    return session.scalars(stmt).first()


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One status change an import says a component went through."""

    component_id: int
    at: datetime
    old_status: str | None
    status: str
    cause: str
    incident_id: int | None


def imported_history(session: Session, component_ids: Sequence[int]) -> list[HistoryEntry]:
    """The history imports wrote for these components, oldest first."""
    if not component_ids:
        return []
    stmt = (
        select(StatusChange)
        .where(StatusChange.component_id.in_(component_ids), StatusChange.actor == IMPORT_ACTOR)
        .order_by(StatusChange.component_id, StatusChange.at, StatusChange.id)
    )
    return [
        HistoryEntry(r.component_id, r.at, r.old_status, r.status, r.cause, r.incident_id)
        for r in session.scalars(stmt)
    ]


def replace_history(
    session: Session, component_ids: Sequence[int], entries: Iterable[HistoryEntry]
) -> None:
    """Put `entries` in place of the history imports wrote for these components."""
    if component_ids:
        session.execute(
            delete(StatusChange).where(
                StatusChange.component_id.in_(component_ids), StatusChange.actor == IMPORT_ACTOR
            )
        )
    session.add_all(
        StatusChange(
            component_id=e.component_id,
            at=e.at,
            old_status=e.old_status,
            status=e.status,
            cause=e.cause,
            incident_id=e.incident_id,
            actor=IMPORT_ACTOR,
        )
        for e in entries
    )
