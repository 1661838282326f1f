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

`read_probe` reads the marks with everything else a build compares with what it
saw before (the components and groups, the incidents' signatures, the
postmortems', the metrics), and
already the rows above both old high marks, the answer in the common case: on
PostgreSQL all in one round trip. Every id in its SQL is a literal: planned for
its own value, `id > N` near the top is a short index range scan, where the
plan of a prepared statement (psycopg prepares one after five runs) would be
made for any value, and on a table without statistics read every row.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Dialect, ScalarSelect, Select, func, literal, select
from sqlalchemy.orm import Session

from storage.metrics import NEWEST_POINT, ROWS, MetricRow
from storage.models import IncidentUpdate, StatusChange
from storage.postmortems import SIGNATURES, signatures_of
from storage.snapshot_rows import (
    COMPONENTS,
    GROUPS,
    ComponentRow,
    Converter,
    GroupRow,
    SignatureRow,
    driver_sql,
    read_together,
    signature_sql,
)


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


def _marks_of(row: tuple[object, ...]) -> tuple[Marks, Marks]:
    values = [int(v) for v in row]  # type: ignore[call-overload]
    return Marks(*values[:3]), Marks(*values[3:])


# Per incident id: the count, highest id and sum of ids of its updates (above a mark).
Tally = dict[int, tuple[int, int, int]]


class Probe(NamedTuple):
    """What one build compares with the build before, read together (`read_probe`)."""

    components: list[ComponentRow]  # every component, removed ones too
    groups: list[GroupRow]
    updates: Marks  # incident_updates' marks
    history: Marks  # component_status_history's marks
    updates_above: Tally | None  # the updates above the `updates_above` asked for
    history_above: dict[int, int] | None  # per component, its history rows above that mark
    signatures: list[SignatureRow]  # every public incident's, by id (signature_sql)
    postmortems: dict[int, tuple[object, ...]]  # storage.postmortems.signatures_of
    metrics: list[MetricRow]  # every metric, in page order
    newest_point: int  # the highest metric point id (0: none)


def read_probe(session: Session, *, updates_above: int | None, history_above: int | None) -> Probe:
    """The marks, the rows above the old high marks given, and the signatures, read together.

    Each id above which to read is the highest its table had when last read
    (None: nothing to read above); when the marks say only rows above it came, the
    rows read here are all that is new.
    """
    dialect = session.get_bind().dialect
    components_sql, component_kinds = driver_sql(dialect, COMPONENTS)
    groups_sql, group_kinds = driver_sql(dialect, GROUPS)
    statements = [
        components_sql,
        groups_sql,
        _marks_sql(dialect),
        signature_sql(dialect),
        *_plain_sql(dialect),
    ]
    if updates_above is not None:
        statements.append(_tally_sql(dialect, updates_above))
    if history_above is not None:
        statements.append(_history_sql(dialect, history_above))
    results = read_together(session, statements)
    components, groups, (marks,), signatures, postmortems, metrics, ((newest,),) = results[:7]
    extra = iter(results[7:])
    updates, history = _marks_of(marks)
    convert = Converter()
    return Probe(
        components=[ComponentRow(*r) for r in convert(component_kinds, components)],
        groups=[GroupRow(*r) for r in convert(group_kinds, groups)],
        updates=updates,
        history=history,
        updates_above=_tally_of(next(extra)) if updates_above is not None else None,
        history_above=dict(next(extra)) if history_above is not None else None,
        signatures=signatures,
        postmortems=signatures_of(postmortems),
        metrics=[MetricRow(*r) for r in metrics],
        newest_point=int(newest),
    )


@lru_cache(maxsize=4)
def _plain_sql(dialect: Dialect) -> tuple[str, str, str]:
    """The postmortems' signatures, the metrics, and the newest point id, as SQL."""
    return (_sql(SIGNATURES, dialect), _sql(ROWS, dialect), _sql(NEWEST_POINT, dialect))


def _sql(statement: Select[Any], dialect: Dialect) -> str:
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


@lru_cache(maxsize=4)
def _marks_sql(dialect: Dialect) -> str:
    """The marks statement as SQL for this dialect (it takes no parameters).

    PostgreSQL reads every row for a count as for a sum: there the updates' two
    come from one pass over the table (a sixth less time than two).
    """

    def highest(table: type[IncidentUpdate | StatusChange]) -> ScalarSelect[int]:
        return select(func.coalesce(func.max(table.id), 0)).scalar_subquery()

    history = [
        select(func.count()).select_from(StatusChange).scalar_subquery(),
        highest(StatusChange),
        literal(0),  # its ids are not summed
    ]
    total = func.coalesce(func.sum(IncidentUpdate.id), 0)
    if dialect.name == "postgresql":
        both = select(func.count().label("rows"), total.label("total")).subquery()
        statement = select(both.c.rows, highest(IncidentUpdate), both.c.total, *history)
    else:
        updates = [
            select(func.count()).select_from(IncidentUpdate).scalar_subquery(),
            highest(IncidentUpdate),
            select(total).scalar_subquery(),
        ]
        statement = select(*updates, *history)
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


class UpdateTally:
    """Per incident id: how many updates it has and its newest update's id.

    Kept from build to build: only the updates added since the last are read, as
    long as the marks say nothing else moved.
    """

    def __init__(self) -> None:
        self._marks: Marks | None = None
        self._tops: dict[int, tuple[int, int]] = {}

    @property
    def highest(self) -> int | None:
        """The highest update id as of the last refresh (None: there was none)."""
        return self._marks.highest if self._marks is not None else None

    def refresh(
        self, session: Session, marks: Marks, above: Tally | None = None
    ) -> tuple[dict[int, tuple[int, int]], set[int] | None]:
        """The tally as the database has it now (`marks`: incident_updates' marks), and the
        incident ids whose tally moved since the last refresh (None: it was read afresh).

        `above`: the updates above `highest`, if already read (`read_probe`)."""
        before = self._marks
        if before == marks:
            return self._tops, set()
        if before is not None:
            grown = above if above is not None else _tally(session, after=before.highest)
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


def _tally(session: Session, *, after: int | None) -> Tally:
    """Per incident id: the count, highest id and sum of ids of its updates (above `after`)."""
    (rows,) = read_together(session, [_tally_sql(session.get_bind().dialect, after)])
    return _tally_of(rows)


def _tally_of(rows: list[tuple[Any, ...]]) -> Tally:
    return {iid: (n, top, int(total)) for iid, n, top, total in rows}


def _tally_sql(dialect: Dialect, after: int | None) -> str:
    """The tally statement as SQL for this dialect, of the updates above `after` if given."""
    return _above(dialect, _grouped_sql(dialect, "updates"), IncidentUpdate.__tablename__, after)


def _history_sql(dialect: Dialect, after: int) -> str:
    """Per component: how many of its history rows have ids above `after`."""
    return _above(dialect, _grouped_sql(dialect, "history"), StatusChange.__tablename__, after)


@lru_cache(maxsize=8)
def _grouped_sql(dialect: Dialect, name: str) -> str:
    statement = (
        select(
            IncidentUpdate.incident_id,
            func.count(),
            func.max(IncidentUpdate.id),
            func.sum(IncidentUpdate.id),
        ).group_by(IncidentUpdate.incident_id)
        if name == "updates"
        else select(StatusChange.component_id, func.count()).group_by(StatusChange.component_id)
    )
    return str(statement.compile(dialect=dialect))


# The highest id PostgreSQL's bigint holds: the upper end of a range with no upper end.
_NO_HIGHER = 2**63 - 1


def _above(dialect: Dialect, sql: str, table: str, after: int | None) -> str:
    """A grouped statement's SQL limited to the ids above `after` (written as a literal).

    On PostgreSQL the range has an upper end, though no id reaches it: a table
    never analyzed (autovacuum off, or not yet come round) has no statistics, and
    the planner puts a third of its rows above any `id > N`, enough for it to read
    the whole table (50,000 history rows: 3.7 ms, each publish), where for a range
    with both ends it puts a two-hundredth: the primary key's index, 0.1 ms. With
    statistics both come out the same, from the index's actual highest value.
    """
    if after is None:
        return sql
    head, group, tail = sql.partition(" GROUP BY ")
    within = f"{table}.id > {int(after)}"
    if dialect.name == "postgresql":
        within += f" AND {table}.id <= {_NO_HIGHER}"
    return f"{head} WHERE {within}{group}{tail}"
