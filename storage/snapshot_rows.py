"""The rows a snapshot is built from, read with plain column selects.

No ORM objects are built: a snapshot of thousands of incidents reads tuples,
which is several times faster, and tuples compare cheaply when the cache
checks what changed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    Dialect,
    Integer,
    Select,
    String,
    Text,
    bindparam,
    cast,
    literal_column,
    select,
    text,
)
from sqlalchemy.orm import Session

from storage.models import (
    AffectedComponent,
    Component,
    ComponentChange,
    Group,
    Incident,
    IncidentUpdate,
    Postmortem,
    StatusChange,
)
from storage.rules import ComponentStatus, PageStatus
from storage.snapshot import (
    UPTIME_DAYS,
    IncidentView,
    PageInfo,
    PostmortemView,
    Snapshot,
    grouped,
)
from storage.types import UTCDateTime


class ComponentRow(NamedTuple):
    id: int
    code: str
    name: str
    description: str | None
    position: int
    status: str
    group_id: int | None
    showcase: bool
    only_show_if_degraded: bool
    start_date: date | None
    created_at: datetime
    updated_at: datetime
    removed_at: datetime | None


class GroupRow(NamedTuple):
    id: int
    code: str
    name: str
    description: str | None
    position: int
    created_at: datetime
    updated_at: datetime


class IncidentRow(NamedTuple):
    id: int
    number: int
    kind: str
    title: str
    status: str
    impact: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime
    monitoring_at: datetime | None
    resolved_at: datetime | None
    scheduled_for: datetime | None
    scheduled_until: datetime | None
    auto: bool


class UpdateRow(NamedTuple):
    id: int
    incident_id: int
    code: str
    status: str
    body: str
    display_at: datetime
    created_at: datetime
    updated_at: datetime
    deliver_notifications: bool


# component id, old status, new status
Change = tuple[int, str, str]
History = tuple[ComponentStatus, list[tuple[datetime, ComponentStatus]]]
COMPONENT_COLUMNS = [getattr(Component, f) for f in ComponentRow._fields]
GROUP_COLUMNS = [getattr(Group, f) for f in GroupRow._fields]
INCIDENT_COLUMNS = [getattr(Incident, f) for f in IncidentRow._fields]
UPDATE_COLUMNS = [getattr(IncidentUpdate, f) for f in UpdateRow._fields]

# What the public may see of the incidents table: no draft (a discarded one is a draft).
PUBLIC = Incident.draft.is_(False)

# Past this many incidents to reload, one unfiltered read beats a long IN list.
FILTER_LIMIT = 400


# An incident as the signature read sees it: id, number, then what moves when it is edited
# (its row version on PostgreSQL; its update time, title, status and impact on SQLite).
SignatureRow = tuple[Any, ...]


def read_together(session: Session, statements: Sequence[str]) -> list[list[tuple[Any, ...]]]:
    """The rows of each statement (SQL without parameters), in the session's transaction.

    On PostgreSQL in one round trip: psycopg sends a string of several statements
    as one simple query and hands back each one's rows in turn. sqlite3 runs one
    statement a call, in process, where a round trip costs next to nothing.
    """
    cursor = session.connection().connection.cursor()
    try:
        if session.get_bind().dialect.name != "postgresql":
            out = []
            for sql in statements:
                cursor.execute(sql)
                out.append([tuple(row) for row in cursor.fetchall()])
            return out
        cursor.execute(";\n".join(statements))
        out = [[tuple(row) for row in cursor.fetchall()]]
        while cursor.nextset():
            out.append([tuple(row) for row in cursor.fetchall()])
    finally:
        cursor.close()
    if len(out) != len(statements):
        raise RuntimeError(f"{len(statements)} statements gave {len(out)} results")
    return out


def signature(
    row: SignatureRow,
    tops: dict[int, tuple[int, int]],
    postmortems: dict[int, tuple[object, ...]],
) -> tuple[object, ...]:
    """What tells a changed incident from an unchanged one, cheaply.

    The row's version (or its update time and short fields) catches edits; `tops`, the count and
    newest id of its updates (storage/snapshot_marks.UpdateTally), catch a new
    update even when the clock has not moved; then its published postmortem's times.
    """
    iid = row[0]
    return (*row[1:], tops.get(iid), postmortems.get(iid))


@lru_cache(maxsize=4)
def signature_sql(dialect: Dialect) -> str:
    """The signature query as SQL for this dialect (it takes no parameters).

    On PostgreSQL a row's `xmin`, the transaction that wrote its current version,
    stands for its fields: every UPDATE makes a new version, and only one
    transaction's committed version is ever seen, so it moves exactly when the row
    was written to (of any column: a nudge's too, which reloads one incident for
    nothing). Formatting and reading 2,000 update times and titles was most of
    this read's cost. SQLite has no such column: it reads the fields, its times as
    the text it stores.
    """
    fields: list[ColumnElement[Any]]
    if dialect.name == "postgresql":
        fields = [cast(literal_column(f"{Incident.__tablename__}.xmin"), Text)]
    else:
        fields = [
            Incident.updated_at.expression,
            Incident.title.expression,
            Incident.status.expression,
            Incident.impact.expression,
        ]
    # Drafts are nobody's business outside Slack.
    incidents = select(Incident.id, Incident.number, *fields).where(PUBLIC)
    # By id: two reads in a row list an unchanged table in the same order.
    return str(incidents.order_by(Incident.id).compile(dialect=dialect))


# An incident's row, its updates with their component changes, the ids of the components
# it affects, and its published postmortem.
Loaded = tuple[
    IncidentRow,
    tuple[tuple[UpdateRow, tuple[Change, ...]], ...],
    tuple[int, ...],
    PostmortemView | None,
]


_INCIDENTS = select(*INCIDENT_COLUMNS).where(PUBLIC)
_UPDATES = select(*UPDATE_COLUMNS)
_CHANGES = (
    select(
        ComponentChange.update_id,
        ComponentChange.component_id,
        ComponentChange.old_status,
        ComponentChange.new_status,
    )
    .join(IncidentUpdate, IncidentUpdate.id == ComponentChange.update_id)
    .order_by(ComponentChange.id)
)
_AFFECTED = select(AffectedComponent.incident_id, AffectedComponent.component_id).order_by(
    AffectedComponent.id
)
_POSTMORTEMS = select(
    Postmortem.incident_id,
    Postmortem.body,
    Postmortem.published_at,
    Postmortem.body_updated_at,
    Postmortem.notified_at,
).where(Postmortem.published_at.is_not(None))  # only a published one leaves the database
_EVERYTHING: dict[str, Select[Any]] = {
    "incidents": _INCIDENTS,
    "updates": _UPDATES,
    "changes": _CHANGES,
    "affected": _AFFECTED,
    "postmortems": _POSTMORTEMS,
}
# The column each load statement is filtered on when only some incidents are read.
_FILTERED_ON: dict[str, ColumnElement[int]] = {
    "incidents": Incident.id.expression,
    "updates": IncidentUpdate.incident_id.expression,
    "changes": IncidentUpdate.incident_id.expression,
    "affected": AffectedComponent.incident_id.expression,
    "postmortems": Postmortem.incident_id.expression,
}
_LOADS = ("changes", "updates", "affected", "incidents", "postmortems")
# Where the ids go in a filtered statement's SQL: written in as integer literals.
_IDS = "__[POSTCOMPILE_ids]"


def load_incidents(session: Session, ids: set[int], *, everything: bool) -> dict[int, Loaded]:
    """Incidents with their updates, component changes, affected components and published
    postmortems, as rows (the postmortem as the page shows it).

    `everything`: every incident, unfiltered (a first build, or so many that one
    read of each table beats a long IN list); else the incidents `ids`.
    """
    changes, updates, affected, incidents, postmortems = _driver_read(
        session, None if everything else sorted(ids)
    )
    by_update: dict[int, list[Change]] = defaultdict(list)
    for update_id, cid, old, new in changes:
        by_update[update_id].append((cid, old, new))
    by_incident: dict[int, list[tuple[UpdateRow, tuple[Change, ...]]]] = defaultdict(list)
    for r in updates:
        u = UpdateRow(*r)
        by_incident[u.incident_id].append((u, tuple(by_update.get(u.id, ()))))
    touched: dict[int, list[int]] = defaultdict(list)
    for iid, cid in affected:
        touched[iid].append(cid)
    written = {
        iid: PostmortemView(
            body=body,
            published_at=published_at,
            body_updated_at=body_updated_at,
            notified_subscribers=notified_at is not None,
        )
        for iid, body, published_at, body_updated_at, notified_at in postmortems
    }
    out: dict[int, Loaded] = {}
    for r in incidents:
        row = IncidentRow(*r)
        out[row.id] = (
            row,
            tuple(by_incident.get(row.id, ())),
            tuple(touched.get(row.id, ())),
            written.get(row.id),
        )
    return out


def _driver_read(session: Session, ids: list[int] | None) -> list[list[tuple[Any, ...]]]:
    """The load statements' rows (of the incidents `ids`, or of all), read together.

    Read through the session's own DBAPI connection: same transaction (and so, on
    PostgreSQL, the same REPEATABLE READ snapshot) as every other read of the build,
    and one round trip. SQLAlchemy's processing of some 50,000 values, one call
    each, was a fifth of a first build.
    """
    dialect = session.get_bind().dialect
    statements = [_driver_sql(dialect, name, ids is not None) for name in _LOADS]
    results = read_together(
        session, [sql if ids is None else _with_ids(sql, ids) for sql, _ in statements]
    )
    convert = Converter()
    return [convert(kinds, rows) for (_, kinds), rows in zip(statements, results, strict=True)]


class _Times(dict[object, datetime | None]):
    """A stored time → its UTC datetime, as storage.types.UTCDateTime reads it (naive,
    from SQLite, is UTC); each distinct value parsed once, on its first lookup."""

    def __missing__(self, value: object) -> datetime | None:
        found: datetime | None = None
        if value is not None:
            at = datetime.fromisoformat(value) if isinstance(value, str) else value
            assert isinstance(at, datetime), f"{value!r} is not a time"
            found = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        self[value] = found
        return found


class _Days(dict[object, date | None]):
    """A stored date → a date (SQLite keeps ISO text); each distinct value parsed once."""

    def __missing__(self, value: object) -> date | None:
        found = date.fromisoformat(value) if isinstance(value, str) else value
        assert found is None or isinstance(found, date), f"{value!r} is not a date"
        self[value] = found
        return found


class _Flags(dict[object, bool | None]):
    """A stored flag → a bool (SQLite keeps 0 and 1); None stays None."""

    def __missing__(self, value: object) -> bool | None:
        found = None if value is None else bool(value)
        self[value] = found
        return found


class Converter:
    """Makes of a driver's rows what the columns' SQLAlchemy types would have made of them.

    Each "time" becomes a UTC datetime, each "date" a date, each "bool" a bool; integers
    and text come from both drivers as they are. Column by column, each value looked
    up in a dict of the values seen (`map` of a dict's lookup runs in C: a first build
    converts some 50,000 values, most of them seen before), and rows come back as tuples.
    """

    def __init__(self) -> None:
        self._by_kind: dict[str, Callable[[Any], Any]] = {
            "time": _Times().__getitem__,
            "date": _Days().__getitem__,
            "bool": _Flags().__getitem__,
        }

    def __call__(
        self, kinds: tuple[str, ...], fetched: Sequence[Sequence[Any]]
    ) -> list[tuple[Any, ...]]:
        lookups = {k: self._by_kind[kind] for k, kind in enumerate(kinds) if kind in self._by_kind}
        if not fetched or not lookups:
            return [tuple(row) for row in fetched]
        columns: list[Iterable[Any]] = list(zip(*fetched, strict=True))
        for k, lookup in lookups.items():
            columns[k] = map(lookup, columns[k])
        return list(zip(*columns, strict=True))


@lru_cache(maxsize=8)
def driver_sql(dialect: Dialect, statement: Select[Any]) -> tuple[str, tuple[str, ...]]:
    """A statement without parameters as SQL for this dialect, and how Converter reads
    each of its columns."""
    return _compiled(dialect, statement)


def _compiled(
    dialect: Dialect, statement: Select[Any], **compile_kwargs: Any
) -> tuple[str, tuple[str, ...]]:
    """A statement's SQL for this dialect, and how Converter reads each of its columns."""
    sql = str(statement.compile(dialect=dialect, compile_kwargs=compile_kwargs))
    return sql, tuple(_kind(column) for column in statement.selected_columns)


def _with_ids(sql: str, ids: Sequence[int]) -> str:
    """SQL compiled with _IDS, the ids written in as integer literals."""
    return sql.replace(_IDS, ", ".join(str(int(i)) for i in ids) or "NULL")


# Every component, and every group, as ComponentRow and GroupRow take them.
COMPONENTS = select(*COMPONENT_COLUMNS)
GROUPS = select(*GROUP_COLUMNS)


@lru_cache(maxsize=32)
def _driver_sql(dialect: Dialect, name: str, filtered: bool) -> tuple[str, tuple[str, ...]]:
    """A load statement as SQL for this dialect (no parameters; if `filtered`, with _IDS
    where the incident ids go), and how Converter reads each column."""
    statement = _EVERYTHING[name]
    if filtered:
        ids = bindparam("ids", type_=Integer, expanding=True)
        if name == "changes" and dialect.name == "postgresql":
            # The incidents' update ids as one array: an index lookup of each, whatever
            # the planner believes of the tables (without statistics it hashed them all).
            update_ids = select(IncidentUpdate.id).where(IncidentUpdate.incident_id.in_(ids))
            inner = str(update_ids.compile(dialect=dialect))
            statement = (
                select(*statement.selected_columns)
                .where(text(f"{ComponentChange.__tablename__}.update_id = ANY(ARRAY({inner}))"))
                .order_by(ComponentChange.id)
            )
        else:
            statement = statement.where(_FILTERED_ON[name].in_(ids))
    sql, kinds = _compiled(dialect, statement)
    if filtered and _IDS not in sql:
        raise AssertionError(f"no {_IDS} in {sql}")
    return sql, kinds


def _kind(column: ColumnElement[Any]) -> str:
    if isinstance(column.type, UTCDateTime):
        return "time"
    if isinstance(column.type, Boolean):
        return "bool"
    if isinstance(column.type, Date):
        return "date"
    # Integers and text come from both drivers as SQLAlchemy would return them.
    if not isinstance(column.type, Integer | String):
        raise TypeError(f"{column} needs a conversion the snapshot's driver read lacks")
    return ""


def window_start(now: datetime, tz: ZoneInfo) -> datetime:
    """A little before the first day of the uptime strip opens."""
    first_day = now.astimezone(tz).date() - timedelta(days=UPTIME_DAYS + 1)
    return datetime.combine(first_day, datetime.min.time(), tzinfo=tz)


def recent_history(
    session: Session, component_ids: list[int], *, since: datetime
) -> dict[int, History]:
    """Per component: its state when the uptime window opens, and the changes after.

    Both reads in one round trip, the ids and the time written in as literals.
    """
    out: dict[int, History] = {}
    if not component_ids:
        return out
    dialect = session.get_bind().dialect
    (initial_sql, _), (recent_sql, kinds) = _history_sql(dialect, since)
    first, recent = read_together(
        session, [_with_ids(initial_sql, component_ids), _with_ids(recent_sql, component_ids)]
    )
    initial = {cid: ComponentStatus(status) for cid, status in first if status is not None}
    changes: dict[int, list[tuple[datetime, ComponentStatus]]] = defaultdict(list)
    for component_id, at, status in Converter()(kinds, recent):
        changes[component_id].append((at, ComponentStatus(status)))
    for cid in component_ids:
        out[cid] = (initial.get(cid, ComponentStatus.OPERATIONAL), changes.get(cid, []))
    return out


@lru_cache(maxsize=4)
def _history_sql(
    dialect: Dialect, since: datetime
) -> tuple[tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...]]]:
    """recent_history's two statements for the window opening at `since` (it moves once a
    day), with _IDS where the component ids go."""
    ids: list[ColumnElement[Any]] = [literal_column(_IDS)]
    # The newest change before the window gives each component's starting state: one
    # step down the (component_id, at) index per component. Ranking every older row
    # instead (a window function) sorted years of history on each full build.
    newest = (
        select(StatusChange.status)
        .where(StatusChange.component_id == Component.id, StatusChange.at < since)
        .order_by(StatusChange.at.desc(), StatusChange.id.desc())
        .limit(1)
        .correlate(Component)
        .scalar_subquery()
    )
    initial = select(Component.id, newest).where(Component.id.in_(ids))
    recent = (
        select(StatusChange.component_id, StatusChange.at, StatusChange.status)
        .where(StatusChange.component_id.in_(ids), StatusChange.at >= since)
        .order_by(StatusChange.at, StatusChange.id)
    )
    return (
        _compiled(dialect, initial, literal_binds=True),
        _compiled(dialect, recent, literal_binds=True),
    )


def incident_pages_snapshot(
    page: PageInfo,
    now: datetime,
    status: PageStatus,
    live: Sequence[ComponentRow],
    groups: Mapping[int, GroupRow],
    incidents: tuple[IncidentView, ...],
    maintenances: tuple[IncidentView, ...],
) -> Snapshot:
    """The snapshot as far as incident pages need it, before uptime and charts are read.

    An incident page shows its incident, the page and the names of the groups
    (renderers/site.shared_by_incident_pages): all known once the incidents and the
    components' rows are. `statusbot render` hands this to a forked child, which
    renders incident pages while the snapshot's build reads on. It has no components
    (their views carry uptime) and no metrics; its groups are the full snapshot's,
    each without its components: the groups of live components, in page order.
    """
    members: dict[int, list[ComponentRow]] = defaultdict(list)
    for c in live:  # page order: a group comes where its first member does
        if c.group_id is not None and c.group_id in groups:
            members[c.group_id].append(c)
    views = tuple(grouped(groups[gid], inside, ()) for gid, inside in members.items())
    return Snapshot(
        page=page,
        generated_at=now,
        status=status,
        components=(),
        groups=views,
        layout=(),
        incidents=incidents,
        maintenances=maintenances,
    )
