"""Locks that span processes, for work only one process may do at a time."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)

# PostgreSQL advisory lock keys: one per kind of work.
PAGE_LOCK = 0x53_74_61_74_75_73  # "Status": writing the public page


@contextmanager
def exclusive(engine: Engine, key: int = PAGE_LOCK) -> Iterator[Connection | None]:
    """Hold a lock shared by every process on this database for the block, and read
    under it on the lock's own connection.

    Several `serve` processes publish one page: holding this while they read
    the state and write the files means the last writer always wrote the
    newest state, so the page never steps back. SQLite runs in one process,
    where the caller's own thread lock is enough, so this does nothing there.

    On PostgreSQL (a session-level advisory lock) the block gets the lock's
    connection in a REPEATABLE READ, READ ONLY transaction (every read sees one
    moment) begun once the lock was taken, so it sees whatever the lock's previous
    holder saw. An incremental publish is a handful of short queries, each a round
    trip dearer than its query while the server's backends share the cores with the
    publisher: one connection saves the reader's checkout (its pre-ping), and taking
    the lock and beginning the transaction go in one round trip, as do ending it and
    letting go of the lock. The transaction stays open while the block renders and
    writes: it reads nothing then, and holds no lock but the page's. Begin a session
    on the connection with join_transaction_mode="rollback_only" to leave the
    transaction to this. SQLite yields None: its reads take the caller's connections.

    Should its backend go away while the block runs, the lock goes with it: a read
    then fails (and the publish with it), a write already under way finishes
    unguarded, as with any session-level lock. Letting go of the lock cannot fail
    the block: a connection that could not is closed, which lets go too.
    """
    if engine.dialect.name != "postgresql":
        yield None
        return
    key = int(key)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # BEGIN and COMMIT around the lock: in one string the lock's statement would
        # otherwise join the next transaction, whose isolation level must come first.
        # (Statements without parameters go as one simple query: one round trip.)
        conn.exec_driver_sql(
            f"BEGIN; SELECT pg_advisory_lock({key}); COMMIT; "
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        )
        try:
            yield conn
        finally:
            _release(conn, key)


def _release(conn: Connection, key: int) -> None:
    """End the read transaction, if still open, and let go of the lock: one round trip."""
    if conn.invalidated:
        return  # its backend is gone, and the lock with it
    raw = conn.connection.dbapi_connection
    assert raw is not None
    try:
        ending = "ROLLBACK; " if raw.info.transaction_status.name != "IDLE" else ""
        conn.exec_driver_sql(f"{ending}SELECT pg_advisory_unlock({key})")
        conn.rollback()  # SQLAlchemy's record of it: the transaction has ended, nothing is sent
    except Exception:
        # Most likely its backend went away mid-block (the block's own error says
        # so); either way, a closed connection holds no lock.
        log.warning("could not let go of the page lock; closing its connection", exc_info=True)
        if not conn.invalidated:
            conn.invalidate()
    except BaseException:
        if not conn.invalidated:
            conn.invalidate()
        raise
