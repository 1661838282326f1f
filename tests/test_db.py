"""Engine setup: SQLite's pragmas, and readers that never hold up writers."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import select, text

from bot.runtime import Runtime
from storage.models import Component
from tests.conftest import make_test_engine


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
