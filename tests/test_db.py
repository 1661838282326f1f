"""Engine setup: SQLite's pragmas, and readers that never hold up writers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import OperationalError

from bot.runtime import Runtime
from storage.db import make_engine, ping_after_idle
from storage.models import Component
from tests.conftest import PG_URL, make_test_engine


def test_sqlite_pragmas(tmp_path: Path) -> None:
    # SQLite's own settings: a test of SQLite alone, not one per backend.
    engine, _, _ = make_test_engine("sqlite", tmp_path)
    assert engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    engine.dispose()


def test_a_long_read_does_not_block_a_command(runtime: Runtime) -> None:
    assert runtime.run_line("/component add API", user="U1").ok
    done = threading.Event()
    with runtime.reader() as reading:
        assert reading.scalars(select(Component.name)).all() == ["API"]  # transaction open

        def write() -> None:
            assert runtime.run_line("/component set API major", user="U1").ok
            done.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert done.wait(timeout=10), "the writer waited for the reader"
        if runtime.engine.dialect.name == "sqlite":
            # The reader keeps its consistent view until it ends (WAL snapshot).
            assert reading.scalars(select(Component.status)).all() == ["operational"]
        writer.join()
    with runtime.reader() as fresh:
        assert fresh.scalars(select(Component.status)).all() == ["major_outage"]


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    assert PG_URL
    admin = make_engine(PG_URL)
    gone = text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid")
    # Autocommit: within one transaction pg_stat_activity would show the same snapshot.
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        deadline = time.monotonic() + 10
        while not conn.execute(gone, {"pid": pid}).scalar():
            assert time.monotonic() < deadline, f"backend {pid} outlived its termination"
            time.sleep(0.01)
    admin.dispose()


@pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL")
def test_a_connection_that_sat_idle_and_died_is_replaced_unseen() -> None:
    """PostgreSQL restarted (here: our backend was killed) while the pooled connection
    waited: the ping before its next use sees it, and a fresh one is used instead."""
    assert PG_URL
    engine = make_engine(PG_URL, pool_size=1, pool_pre_ping=False)
    ping_after_idle(engine, idle=0.0)  # every checkin counts as idle: always pinged
    try:
        first = _backend_pid(engine)
        _terminate(first)
        assert _backend_pid(engine) != first  # no error: the dead one was left behind
    finally:
        engine.dispose()


@pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL")
def test_a_connection_just_used_is_not_pinged_and_one_failure_resets_the_pool() -> None:
    """Within PING_AFTER_IDLE no round trip is spent on a ping (so a connection that
    died in that gap fails its one transaction), and the pool starts afresh after it."""
    assert PG_URL
    engine = make_engine(PG_URL, pool_size=2, pool_pre_ping=False)
    ping_after_idle(engine, idle=3600.0)  # however slow this machine: never idle enough
    try:
        with engine.connect() as one, engine.connect() as two:  # two pooled connections
            pids = {
                int(c.execute(text("SELECT pg_backend_pid()")).scalar_one()) for c in (one, two)
            }
        for pid in pids:
            _terminate(pid)
        with pytest.raises(OperationalError), engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert _backend_pid(engine) not in pids  # the other dead one was dropped too
    finally:
        engine.dispose()
