"""Locks that span processes, for work only one process may do at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

# PostgreSQL advisory lock keys: one per kind of work.
PAGE_LOCK = 0x53_74_61_74_75_73  # "Status": writing the public page


@contextmanager
def exclusive(engine: Engine, key: int = PAGE_LOCK) -> Iterator[None]:
    """Hold a lock shared by every process on this database for the block.

    Several `serve` processes publish one page: holding this while they read
    the state and write the files means the last writer always wrote the
    newest state, so the page never steps back. SQLite runs in one process,
    where the caller's own thread lock is enough, so this does nothing there.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    # A session-level lock: it needs no transaction, so none is opened (autocommit
    # saves a BEGIN and a COMMIT round trip on each side).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
