"""Engines and sessions for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "statusbot_read_only"
# The database holds the audit log: only its owner may read it. SQLite gives the
# -wal and -shm files the database file's own permissions.
SQLITE_FILE_MODE = 0o600
# The write-ahead log's file is cut back to this when the log restarts (bytes); bot/wal.py
# restarts a log grown this long.
WAL_SIZE_LIMIT = 64 * 1024 * 1024
# Under defer_checkpoints, the log's length (pages) at which a commit checkpoints after
# all: only reached when bot/wal.py's thread is not running (256 MiB of 4 KiB pages).
CHECKPOINT_BACKSTOP = 65_536
# PostgreSQL: a pooled connection that sat idle this long is pinged before use (seconds).
PING_AFTER_IDLE = 10.0


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given the way Heroku-style platforms write them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def sqlite_file(url: str) -> str | None:
    """The file a SQLite URL names; None for PostgreSQL, in-memory and URI databases."""
    parsed = make_url(normalise_url(url))
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:") or parsed.query.get("uri"):
        return None  # SQLite reads these itself; leave them to it
    return database


def _create_private(path: str) -> None:
    """Create the database file readable by its owner only, whatever the umask, unless it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SQLITE_FILE_MODE)
    except FileExistsError:
        return
    except OSError:
        return  # e.g. a missing folder: SQLite says so in its own words when it connects
    try:
        os.fchmod(fd, SQLITE_FILE_MODE)  # O_CREAT's mode is masked by the umask; this is not
    finally:
        os.close(fd)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with statusbot's settings for its backend.

    SQLite gets WAL (readers never block the writer), foreign keys, a busy
    timeout, and BEGIN IMMEDIATE for every transaction: a deferred transaction
    that reads then writes can fail at once with "database is locked" when two
    writers upgrade together, whatever the busy timeout, so writers queue up
    front instead.
    """
    url = normalise_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        path = sqlite_file(url)
        if path is not None:
            _create_private(path)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    if "pool_pre_ping" in kwargs:
        return create_engine(url, **kwargs)
    engine = create_engine(url, **kwargs)
    ping_after_idle(engine)
    return engine


def ping_after_idle(engine: Engine, idle: float = PING_AFTER_IDLE) -> None:
    """Check that a pooled connection is alive before it is used, if it sat idle.

    SQLAlchemy's pool_pre_ping asks on every checkout: one more round trip for every
    transaction (a command, a delivery pass, a publish), under load most of a cheap
    one's time. What kills a pooled connection (a server restart, a failover, an idle
    timeout on the way) shows on one that waited; one checked in moments ago is as
    alive as it was then. A connection that dies within the gap is met by the
    statement that uses it: SQLAlchemy sees the disconnect and invalidates the pool
    (every older connection reconnects at its next checkout), and that transaction
    fails whole, written nowhere (a command answers that the database did not answer).
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_from"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_from")
        if since is None or time.monotonic() - since < idle:
            return  # new (its connect was the check), or just used
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as error:
            # The pool drops this connection and checks out a fresh one instead.
            raise exc.DisconnectionError(f"a pooled connection is gone: {error}") from error


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")  # a reader: WAL lets it run beside the writer
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def defer_checkpoints(engine: Engine) -> None:
    """SQLite: this engine's commits leave the write-ahead log to a checkpointer.

    Left to SQLite, the commit that takes the log past 1,000 pages copies it into the
    database and syncs the file (a checkpoint), within that commit: on a busy server
    about once a second, and as long as the disk takes, 100 ms to seconds on a shared
    one, while every other writer waits its turn (bot/serve.py). With this the engine's
    commits only append to the log; `checkpoint`, called from a thread of its own in
    the background process (bot/wal.py), copies it back. Should that thread stop, a
    commit checkpoints again once the log is CHECKPOINT_BACKSTOP pages long. Only for
    `statusbot serve`: every other program keeps SQLite's own checkpoints.
    """

    @event.listens_for(engine, "connect")
    def _no_autocheckpoint(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # Only a log this long (the checkpointer stopped) has a commit checkpoint again.
        cur.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_BACKSTOP}")
        # When the log starts again from its beginning, its file is cut back to this.
        cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        cur.close()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What one checkpoint did: the log's pages, and how many of them are in the
    database now (fewer while a reader still needs the older ones)."""

    busy: bool
    logged: int
    copied: int


def checkpoint(engine: Engine, *, restart_within_ms: int | None = None) -> Checkpoint:
    """Copy SQLite's write-ahead log into the database, without waiting for or blocking
    any reader or writer (PASSIVE): what a commit would do, off the commit's path.

    With `restart_within_ms`, also wait that long at most for the readers of the log
    to finish, so that the next commit writes the log from its start again (RESTART):
    writers wait meanwhile, so it is for a log grown long, and only a short wait.
    """
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if restart_within_ms is None:
            mode = "PASSIVE"
        else:
            mode = "RESTART"
            cur.execute(f"PRAGMA busy_timeout={int(restart_within_ms)}")
        try:
            busy, logged, copied = cur.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        finally:
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")  # pooled: as it was
            cur.close()
    finally:
        raw.close()
    return Checkpoint(busy=bool(busy), logged=int(logged), copied=int(copied))


def page_size(engine: Engine) -> int:
    """The SQLite database's page size in bytes."""
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())


def make_reader(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reading only (snapshots, renders): on SQLite they never take the
    write lock, so a long render doesn't hold up commands."""
    return sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit, so results can be read afterwards."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit if the block finishes, roll back if it raises."""
    with factory() as session, session.begin():
        yield session
