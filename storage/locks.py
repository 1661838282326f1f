"""Locks that span processes, for work only one process may do at a time."""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

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
    publisher: one connection saves the reader's checkout (`PageLock` keeps it
    from one publish to the next, saving the lock's too), and taking the
    lock and beginning the transaction go in one round trip, as do ending it and
    letting go of the lock. The transaction stays open while the block renders and
    writes (it reads nothing then, but holds the tables it read with ACCESS SHARE
    locks, which only a schema change waits for) unless the block ends it sooner
    with `end_reading`, as a full render and a copy to the mirror do. Begin a
    session on the connection with join_transaction_mode="rollback_only" to leave
    the transaction to this. SQLite yields None: its reads take the caller's
    connections.

    Should its backend go away while the block runs, the lock goes with it: a read
    then fails (and the publish with it), a write already under way finishes
    unguarded, as with any session-level lock. Letting go of the lock cannot fail
    the block: a connection that could not is closed, which lets go too.
    """
    lock = PageLock(engine, key)
    try:
        with lock.held() as conn:
            yield conn
    finally:
        lock.pool()  # one block only: its connection goes back to the pool


def end_reading(conn: Connection | None) -> None:
    """End the block's read transaction now rather than with the lock, for a block
    that goes on for a while (a full render): a server with an
    idle_in_transaction_session_timeout would otherwise end the session, and the
    lock with it. A round trip; nothing on SQLite (None)."""
    if conn is not None and _in_transaction(conn):
        conn.exec_driver_sql("ROLLBACK")


class PageLock:
    """`exclusive` for one long-lived publisher: the lock's connection is kept from
    one block to the next, so that a publish checks none out of the pool.

    The pool pings a connection it hands out if it sat idle (storage/db.py's
    ping_after_idle): a round trip of its own before a publish after a quiet spell.
    A kept connection is not pinged: the lock's own statement tells, and one that
    fails because the connection is gone (a server restart, an idle timeout,
    pg_terminate_backend) did nothing on the server, so it goes again on a
    connection from the pool, pinged if it sat idle. One block at a time (the
    publisher's own thread lock sees to it).
    """

    def __init__(self, engine: Engine, key: int = PAGE_LOCK) -> None:
        self.engine = engine
        self.key = key
        self._kept = _Kept()
        # A publisher dropped without `close` (a test's, a one-off command's) closes
        # its connection with it: pooled back after its engine was disposed, it
        # would be left for the garbage collector, still open.
        weakref.finalize(self, self._kept.close)

    @contextmanager
    def held(self) -> Iterator[Connection | None]:
        """Hold the lock for the block; on PostgreSQL, the connection to read from."""
        if self.engine.dialect.name != "postgresql":
            yield None
            return
        conn = self._take()
        try:
            yield conn
        finally:
            if _release(conn, self.key):
                self._kept.keep(conn)
            else:
                _discard(conn)

    def close(self) -> None:
        """Close the kept connection."""
        self._kept.close()

    def pool(self) -> None:
        """Hand the kept connection (the lock let go of) back to the engine's pool."""
        conn = self._kept.take()
        if conn is not None:
            conn.close()

    def _take(self) -> Connection:
        """The kept connection, or one from the pool, holding the lock. One whose backend
        went away fails the lock's statement, which did nothing on the server: then
        another goes, at most once from the pool (which that failure renewed: a pooled
        connection used within storage/db.py's PING_AFTER_IDLE is not pinged)."""
        kept = self._kept.take()
        if kept is not None and _locked(kept, self.key, last=False):
            return kept
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if _locked(conn, self.key, last=False):
            return conn
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        _locked(conn, self.key, last=True)
        return conn


class _Kept:
    """A PageLock's connection between blocks, and the process that opened it."""

    def __init__(self) -> None:
        self._conn: Connection | None = None
        self._pid = 0

    def keep(self, conn: Connection) -> None:
        self._conn, self._pid = conn, os.getpid()

    def take(self) -> Connection | None:
        conn, self._conn = self._conn, None
        if conn is not None and self._pid != os.getpid():
            # Forked: the connection is the parent's. Closing it here would end the
            # parent's session; keep it from the garbage collector instead.
            _ORPHANS.append(conn)
            return None
        return conn

    def close(self) -> None:
        conn = self.take()
        if conn is not None:
            _discard(conn)


def _discard(conn: Connection) -> None:
    """Close a connection that may hold the lock (an error or an interruption came
    after the lock was taken, or while letting go), rather than pool it."""
    if not conn.invalidated:
        conn.invalidate()
    conn.close()


# Connections kept by a process this one was forked from: never used, never closed.
_ORPHANS: list[Connection] = []


def _locked(conn: Connection, key: int, *, last: bool) -> bool:
    """Take the lock on `conn`; False if its backend was gone (it is closed then) and
    this is not the `last` try, else the error is raised."""
    try:
        _lock(conn, key)
    except DBAPIError as error:
        _discard(conn)
        if last or not error.connection_invalidated:
            raise
        log.info("the page lock's connection was gone; taking another")
        return False
    except BaseException:
        _discard(conn)
        raise
    return True


def _lock(conn: Connection, key: int) -> None:
    """Take the lock, then begin the transaction to read in: one round trip."""
    # BEGIN and COMMIT around the lock: in one string the lock's statement would
    # otherwise join the next transaction, whose isolation level must come first.
    # (Statements without parameters go as one simple query.)
    conn.exec_driver_sql(
        f"BEGIN; SELECT pg_advisory_lock({int(key)}); COMMIT; "
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    )


def _release(conn: Connection, key: int) -> bool:
    """End the read transaction, if still open, and let go of the lock: one round trip.

    Whether the connection is fit to use again; one that is not holds no lock
    (closing it lets go of it)."""
    if conn.invalidated:
        return False  # its backend is gone, and the lock with it
    try:
        ending = "ROLLBACK; " if _in_transaction(conn) else ""
        conn.exec_driver_sql(f"{ending}SELECT pg_advisory_unlock({int(key)})")
        conn.rollback()  # SQLAlchemy's record of it: the transaction has ended, nothing is sent
    except Exception:
        # Most likely its backend went away mid-block (the block's own error says
        # so); either way, a closed connection holds no lock.
        log.warning("could not let go of the page lock; closing its connection", exc_info=True)
        _discard(conn)
        return False
    except BaseException:
        _discard(conn)
        raise
    return True


def _in_transaction(conn: Connection) -> bool:
    """Whether the server has a transaction open on the connection (psycopg knows)."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    return bool(raw.info.transaction_status.name != "IDLE")
