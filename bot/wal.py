"""SQLite's checkpoints, off the commands' path: a thread in `statusbot serve`'s
background process copies the write-ahead log into the database once a second.

The web workers' and the background process's own engines leave checkpoints to this
thread (storage.db.defer_checkpoints). Measured under bench/ack.py at 120 commands a
second on this project's 2-core VM: with SQLite's own checkpoints, 30 to 40 commits in
30 s took 25 ms to 3.6 s (each the commit that happened to pass 1,000 pages, syncing
the database file while the other writers waited) and the ack's p99 was 144 ms;
without them, one commit in 30 s took over 10 ms and the p99 was 36 ms.

Each round is PASSIVE: it blocks no reader and no writer, syncs the log, and copies
what no reader still needs; the rest goes on the next round. The log starts again
from its beginning only when a commit finds it all copied and nobody reading it,
which under a steady load may not happen for a long time, so once the log is
WAL_SIZE_LIMIT long a round is a RESTART instead: it holds the writers' turn (they
queue for it as for any writer, bot/serve.py), waits at most RESTART_WAIT_MS for the
readers, and makes the next commit write the log from its start.

Durability is SQLite's `synchronous=NORMAL` (storage/db.py), as before: a commit is
in the log before its command is acknowledged, so a crash of statusbot loses
nothing; the log is synced to disk by each round, so a crash of the machine or a
power cut can lose the last second's commits. If this thread is not running (the
background process restarting) the commits only append to the log, until the
engines' backstop (storage.db.CHECKPOINT_BACKSTOP pages) has them checkpoint again.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from storage.db import WAL_SIZE_LIMIT, Checkpoint, checkpoint, make_engine, page_size

log = logging.getLogger(__name__)

EVERY = 1.0  # seconds between checkpoints
RESTART_WAIT_MS = 20  # the longest a RESTART waits for the log's readers
# A RESTART that found readers this many rounds running, or a log this many times
# WAL_SIZE_LIMIT: said in the log (once a minute at most), as a long read holds it.
BUSY_ROUNDS = 10
WARN_EVERY = 60.0


class Checkpointer:
    """The thread; `stop` ends it after one last checkpoint. `turn_file`: the lock file
    the writers take turns on (bot/serve.py), held during a RESTART."""

    def __init__(self, url: str, *, every: float = EVERY, turn_file: str | None = None) -> None:
        # An engine of its own, outside the writers' turns: a PASSIVE round takes no
        # lock a writer waits for.
        self.engine: Engine = make_engine(url, poolclass=NullPool)
        self.every = every
        self.turn_file = turn_file
        self.restart_at = WAL_SIZE_LIMIT // page_size(self.engine)  # pages
        self._stopping = threading.Event()
        self._warned = 0.0
        self._busy = 0  # RESTARTs in a row that found readers
        self._thread = threading.Thread(target=self._run, name="statusbot-wal", daemon=True)

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=30)
        self.engine.dispose()

    def _run(self) -> None:
        while not self._stopping.wait(self.every):
            self._guarded()
        self._guarded()

    def _guarded(self) -> None:
        try:
            self.once()
        except Exception:  # the thread must outlive anything; the next round tries again
            log.exception("checkpointing SQLite's write-ahead log failed")

    def once(self) -> Checkpoint | None:
        """One round (see the module's docstring); None when SQLite refused it (logged:
        a full disk, say), and the next round tries again."""
        try:
            done = checkpoint(self.engine)
            if done.logged >= self.restart_at:
                with self._writers_turn():
                    done = checkpoint(self.engine, restart_within_ms=RESTART_WAIT_MS)
                self._busy = self._busy + 1 if done.busy else 0
        except (SQLAlchemyError, sqlite3.Error, OSError) as error:
            log.warning("could not checkpoint SQLite's write-ahead log: %s", error)
            return None
        now = time.monotonic()
        held = self._busy >= BUSY_ROUNDS or done.logged >= BUSY_ROUNDS * self.restart_at
        if held and now - self._warned > WARN_EVERY:
            self._warned = now
            log.warning(
                "SQLite's write-ahead log is %d pages long and could not start again for "
                "%d rounds: a long read is holding it",
                done.logged,
                self._busy,
            )
        return done

    @contextmanager
    def _writers_turn(self) -> Iterator[None]:
        """The writers' lock file held: they queue for it instead of napping in
        SQLite's busy handler while the RESTART holds the database."""
        if self.turn_file is None:
            yield
            return
        fd = os.open(self.turn_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # and with it the lock
