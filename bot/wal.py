"""SQLite's checkpoints, off the commands' path: a thread in `statusbot serve`'s
background process copies the write-ahead log into the database once a second.

The web workers' and the background process's own engines leave checkpoints to this
thread (storage.db.defer_checkpoints). Measured under bench/ack.py at 120 commands a
second on this project's 2-core VM: with SQLite's own checkpoints, 30 to 40 commits in
30 s took 25 ms to 3.6 s (each the commit that happened to pass 1,000 pages, syncing
the database file while the other writers waited) and the ack's p99 was 144 ms;
without them, one commit in 30 s took over 10 ms and the p99 was 36 ms.

The checkpoint is PASSIVE: it blocks no reader and no writer, and copies what no
reader still needs; the rest goes on the next round. If this thread is not running
(the background process restarting), the log only grows meanwhile; it never loses a
commit, which is in the log before its command is acknowledged.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from storage.db import checkpoint, make_engine

log = logging.getLogger(__name__)

EVERY = 1.0  # seconds between checkpoints
# The log starts again from its beginning when a commit finds it all copied and no
# reader in it. Under a steady load a read is nearly always under way, and the log
# only grows (72 MB in 30 s at 120 commands/s), so once it is this long (pages of
# 4 KiB: 64 MiB) the checkpoint waits a moment for its readers and restarts it;
# writers wait that moment too (RESTART_WAIT_MS at most).
RESTART_AT = 16_384
RESTART_WAIT_MS = 20
# Pages copied by no round for this long mean a long read is holding them: said in
# the log, once a minute at most.
LONG_LOG = 65_536
WARN_EVERY = 60.0


class Checkpointer:
    """The thread; `stop` ends it after one last checkpoint."""

    def __init__(self, url: str, *, every: float = EVERY) -> None:
        # An engine of its own, outside the writers' turns (bot/serve.py): a passive
        # checkpoint takes no lock a writer waits for.
        self.engine: Engine = make_engine(url, poolclass=NullPool)
        self.every = every
        self._stopping = threading.Event()
        self._warned = 0.0
        self._thread = threading.Thread(target=self._run, name="statusbot-wal", daemon=True)

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)
        self.engine.dispose()

    def _run(self) -> None:
        while not self._stopping.wait(self.every):
            self.once()
        self.once()

    def once(self) -> None:
        """One checkpoint; a failure is logged, and the next round tries again."""
        try:
            done = checkpoint(self.engine)
            if done.logged >= RESTART_AT and done.copied == done.logged:
                done = checkpoint(self.engine, restart_within_ms=RESTART_WAIT_MS)
        except SQLAlchemyError as error:
            log.warning("could not checkpoint SQLite's write-ahead log: %s", error)
            return
        now = time.monotonic()
        if done.logged - done.copied > LONG_LOG and now - self._warned > WARN_EVERY:
            self._warned = now
            log.warning(
                "SQLite's write-ahead log holds %d pages not yet in the database: "
                "a long read is keeping them there",
                done.logged - done.copied,
            )
