"""What tells the snapshot cache, cheaply, that the two long tables gained rows.

An incident's updates and the components' status history only grow in the common
case: one new row or a few since the last build. Each build reads, for both
tables in one statement, the row count and the highest id, and for the updates
the sum of their ids too. When only rows above the old highest id arrived, those
rows account exactly for the difference, and only they are read; anything else
(a deletion, or a row committed below the old highest id by a slower
transaction) shows in the count or the sum, and the caller reads afresh.

Each aggregate is its own scalar subquery: SQLite counts a table's rows without
reading them only when count(*) is alone, and the sum reads every row (about
0.4 ms over 10,000 updates, 5 ms over 50,000 history rows, which go without it,
as they did before).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import Dialect, func, literal, select
from sqlalchemy.orm import Session

from storage.models import IncidentUpdate, StatusChange


class Marks(NamedTuple):
    """A table's row count, highest id and sum of ids (0 when it is empty or not summed)."""

    rows: int
    highest: int
    total: int

    def grew_by(self, before: Marks, count: int, total: int) -> bool:
        """Whether exactly `count` rows whose ids sum to `total` were added above `before`."""
        return (
            self.highest >= before.highest
            and before.rows + count == self.rows
            and before.total + total == self.total
        )


def read_marks(session: Session) -> tuple[Marks, Marks]:
    """The marks of incident_updates and of component_status_history, in one round trip."""
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(_marks_sql(session.get_bind().dialect))
        row = cursor.fetchone()
    finally:
        cursor.close()
    assert row is not None
    values = [int(v) for v in row]
    return Marks(*values[:3]), Marks(*values[3:])


@lru_cache(maxsize=4)
def _marks_sql(dialect: Dialect) -> str:
    """The marks statement as SQL for this dialect (it takes no parameters)."""
    columns = []
    for table, summed in ((IncidentUpdate, True), (StatusChange, False)):
        columns += [
            select(func.count()).select_from(table).scalar_subquery(),
            select(func.coalesce(func.max(table.id), 0)).scalar_subquery(),
            select(
                func.coalesce(func.sum(table.id), 0) if summed else literal(0)
            ).scalar_subquery(),
        ]
    statement = select(*columns)
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


class UpdateTally:
    """Per incident id: how many updates it has and its newest update's id.

    Kept from build to build: only the updates added since the last are read, as
    long as the marks say nothing else moved.
    """

    def __init__(self) -> None:
        self._marks: Marks | None = None
        self._tops: dict[int, tuple[int, int]] = {}

    def refresh(
        self, session: Session, marks: Marks
    ) -> tuple[dict[int, tuple[int, int]], set[int] | None]:
        """The tally as the database has it now (`marks`: incident_updates' marks), and the
        incident ids whose tally moved since the last refresh (None: it was read afresh)."""
        before = self._marks
        if before == marks:
            return self._tops, set()
        if before is not None:
            grown = _tally(session, after=before.highest)
            count = sum(n for n, _, _ in grown.values())
            total = sum(s for _, _, s in grown.values())
            if marks.grew_by(before, count, total):
                for iid, (n, top, _) in grown.items():
                    old = self._tops.get(iid)
                    self._tops[iid] = (n + (old[0] if old else 0), top)
                self._marks = marks
                return self._tops, set(grown)
        self._tops = {iid: (n, top) for iid, (n, top, _) in _tally(session, after=None).items()}
        self._marks = marks
        return self._tops, None


def _tally(session: Session, *, after: int | None) -> dict[int, tuple[int, int, int]]:
    """Per incident id: the count, highest id and sum of ids of its updates (above `after`)."""
    cursor = session.connection().connection.cursor()
    try:
        sql = _tally_sql(session.get_bind().dialect, after is not None)
        if after is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, (after,))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return {iid: (n, top, int(total)) for iid, n, top, total in rows}


@lru_cache(maxsize=8)
def _tally_sql(dialect: Dialect, above: bool) -> str:
    """The tally statement as SQL for this dialect, with one positional parameter if `above`."""
    statement = select(
        IncidentUpdate.incident_id,
        func.count(),
        func.max(IncidentUpdate.id),
        func.sum(IncidentUpdate.id),
    ).group_by(IncidentUpdate.incident_id)
    sql = str(statement.compile(dialect=dialect))
    if not above:
        return sql
    # The driver's own placeholder: sqlite3 takes "?", psycopg "%s".
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    where = f" WHERE {IncidentUpdate.__tablename__}.id > {mark}"
    head, group, tail = sql.partition(" GROUP BY ")
    return head + where + group + tail
