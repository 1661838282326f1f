"""Gap-free numbers that stay unique under concurrent writers."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import Base, Counter

INCIDENT_COUNTER = "incident"


def next_value(session: Session, name: str = INCIDENT_COUNTER) -> int:
    """Bump the counter and return its new value, inside the caller's transaction.

    The UPDATE takes the row lock (PostgreSQL) or the write lock (SQLite) until
    the transaction ends, so two writers can never be handed the same value.
    """
    value: int | None = session.execute(_BUMP, {"counter": name}).scalar_one_or_none()
    if value is not None:
        return value
    try:
        with session.begin_nested():
            session.execute(insert(Counter).values(name=name, value=1))
        return 1
    except IntegrityError:
        # Another writer created the row first; its lock now orders us after it.
        bumped: int = session.execute(_BUMP, {"counter": name}).scalar_one()
        return bumped


# Built once, on the table rather than the mapped class: SQLAlchemy works out a new
# statement object's cache key each time it is executed, and an ORM UPDATE also
# works out how to bring loaded rows in line (no Counter is ever loaded).
_COUNTERS = Base.metadata.tables[Counter.__tablename__]
_BUMP = (
    update(_COUNTERS)
    .where(_COUNTERS.c.name == bindparam("counter"))
    .values(value=_COUNTERS.c.value + 1)
    .returning(_COUNTERS.c.value)
)


def next_values(session: Session, count: int, name: str = INCIDENT_COUNTER) -> range:
    """`count` consecutive new values (an import numbering many incidents at once).

    The first bump takes the lock, as `next_value`'s does, so the rest follow it
    with no other writer in between.
    """
    if count <= 0:
        return range(0)
    first = next_value(session, name)
    if count > 1:
        stmt = update(Counter).where(Counter.name == name)
        session.execute(stmt.values(value=Counter.value + count - 1))
    return range(first, first + count)
