"""SQLite's checkpoints under `statusbot serve`: the commits only append to the
write-ahead log, and the background process's thread copies it into the database."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bot.wal import Checkpointer
from storage.db import (
    CHECKPOINT_BACKSTOP,
    READ_ONLY,
    WAL_SIZE_LIMIT,
    checkpoint,
    defer_checkpoints,
    make_engine,
)
from tests.helpers import free_port, serve_env, start_serve, wait_healthy
from tests.test_page_server import get

ROWS = 3_000  # rows of 2 KB: over SQLite's 1,000-page autocheckpoint


def deferred(path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    defer_checkpoints(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY, pad TEXT)"))
    checkpoint(engine)  # the table is in the file; its rows are what the tests follow
    return engine


def fill(engine: Engine, first: int, count: int) -> None:
    for n in range(first, first + count):
        with engine.begin() as conn:  # one commit each, as commands make them
            conn.execute(text("INSERT INTO t VALUES (:n, :pad)"), {"n": n, "pad": "x" * 2000})


def in_file_alone(path: Path, query: str) -> object:
    """`query`'s answer from the database file as it is on disk, without its log:
    what a checkpoint has copied in so far (None while a copy is torn)."""
    copy = path.with_name("copy-" + path.name)
    shutil.copyfile(path, copy)
    try:
        with sqlite3.connect(copy) as conn:
            return conn.execute(query).fetchone()[0]
    except sqlite3.DatabaseError:
        return None
    finally:
        for leftover in copy.parent.glob(copy.name + "*"):
            leftover.unlink()


def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_deferred_checkpoints_pragmas(tmp_path: Path) -> None:
    engine = deferred(tmp_path / "statusbot.db")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == CHECKPOINT_BACKSTOP
        assert conn.execute(text("PRAGMA journal_size_limit")).scalar() == WAL_SIZE_LIMIT
    engine.dispose()
    with make_engine(f"sqlite:///{tmp_path / 'other.db'}").connect() as conn:  # not deferred
        assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 1000


def test_deferred_commits_leave_the_log_to_the_checkpoint(tmp_path: Path) -> None:
    db = tmp_path / "statusbot.db"
    engine = deferred(db)
    fill(engine, 0, ROWS)
    # SQLite would have copied the log in at 1,000 pages; here the file lacks them all.
    assert in_file_alone(db, "SELECT count(*) FROM t") == 0
    done = checkpoint(engine)
    assert not done.busy and done.copied == done.logged > 1_000
    assert in_file_alone(db, "SELECT count(*) FROM t") == ROWS
    engine.dispose()


def test_a_restart_waits_for_readers_briefly_and_starts_the_log_again(tmp_path: Path) -> None:
    db = tmp_path / "statusbot.db"
    engine = deferred(db)
    fill(engine, 0, ROWS)
    # A reader in the log (the read transaction storage.db opens): a restart waits for it.
    with engine.execution_options(**{READ_ONLY: True}).connect() as reading:
        assert reading.execute(text("SELECT count(*) FROM t")).scalar() == ROWS
        fill(engine, ROWS, 1)
        started = time.monotonic()
        waited = checkpoint(engine, restart_within_ms=50)
        assert waited.busy  # it did not wait long for the reader, and said so
        assert time.monotonic() - started < 5
        reading.commit()
    restarted = checkpoint(engine, restart_within_ms=50)
    assert not restarted.busy and restarted.copied == restarted.logged
    fill(engine, ROWS + 1, 1)  # this commit writes the log from its start
    after = checkpoint(engine)
    assert after.logged < 10
    assert in_file_alone(db, "SELECT count(*) FROM t") == ROWS + 2
    engine.dispose()


def test_the_checkpointer_copies_the_log_while_commands_commit(tmp_path: Path) -> None:
    db = tmp_path / "statusbot.db"
    engine = deferred(db)
    checkpointer = Checkpointer(f"sqlite:///{db}", every=0.05).start()
    try:
        writer = threading.Thread(target=fill, args=(engine, 0, 500))
        writer.start()
        writer.join()
        eventually(
            lambda: in_file_alone(db, "SELECT count(*) FROM t") == 500,
            "the checkpointer never copied the log in",
        )
    finally:
        checkpointer.stop()
        engine.dispose()


def test_a_long_log_is_restarted_even_while_readers_keep_its_end(tmp_path: Path) -> None:
    """Under load PASSIVE never finds the whole log copied: past its length limit a
    round restarts it anyway, once its readers are done."""
    db = tmp_path / "statusbot.db"
    engine = deferred(db)
    checkpointer = Checkpointer(f"sqlite:///{db}")
    checkpointer.restart_at = 100  # pages
    fill(engine, 0, 200)
    with engine.execution_options(**{READ_ONLY: True}).connect() as reading:
        assert reading.execute(text("SELECT count(*) FROM t")).scalar() == 200
        fill(engine, 200, 5)  # beyond what the reader sees: PASSIVE can't copy it
        held = checkpointer.once()
        assert held is not None and held.busy and held.copied < held.logged
        reading.commit()
    restarted = checkpointer.once()
    assert restarted is not None and not restarted.busy
    fill(engine, 205, 1)
    assert checkpoint(engine).logged < 10  # the log started again
    checkpointer.stop()
    engine.dispose()


def test_a_restart_waits_in_the_writers_queue(tmp_path: Path) -> None:
    db = tmp_path / "statusbot.db"
    engine = deferred(db)
    turns = str(db) + "-turn"
    checkpointer = Checkpointer(f"sqlite:///{db}", turn_file=turns)
    checkpointer.restart_at = 10
    fill(engine, 0, 50)
    held = threading.Event()

    def writer_holding_its_turn() -> None:
        fd = os.open(turns, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.set()
        time.sleep(0.5)
        os.close(fd)

    thread = threading.Thread(target=writer_holding_its_turn)
    thread.start()
    assert held.wait(5)
    started = time.monotonic()
    done = checkpointer.once()
    assert time.monotonic() - started >= 0.4  # it waited for the writer's turn to end
    assert done is not None and not done.busy
    thread.join()
    checkpointer.stop()
    engine.dispose()


def test_the_checkpointer_outlives_a_failing_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A round SQLite refuses (a full disk, say) is logged; the next one runs."""
    import bot.wal

    db = tmp_path / "statusbot.db"
    engine = deferred(db)
    real = bot.wal.checkpoint
    failures = iter([sqlite3.OperationalError("database or disk is full"), RuntimeError("bug")])

    def flaky(*args: object, **kwargs: object) -> object:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bot.wal, "checkpoint", flaky)
    checkpointer = Checkpointer(f"sqlite:///{db}", every=0.05).start()
    try:
        fill(engine, 0, 50)
        eventually(
            lambda: in_file_alone(db, "SELECT count(*) FROM t") == 50,
            "the checkpointer stopped after a failing round",
        )
    finally:
        checkpointer.stop()
        engine.dispose()
    assert "database or disk is full" in caplog.text
    assert "checkpointing SQLite's write-ahead log failed" in caplog.text  # the bug


def test_serve_checkpoints_in_its_background_process_and_sets_its_heap_aside(
    tmp_path: Path,
) -> None:
    """The real server: one sign-up is far below SQLite's own checkpoint, yet it reaches
    the database file while serve runs, so the background process's thread copied it."""
    db = tmp_path / "statusbot.db"
    port = free_port()
    process = start_serve(serve_env(f"sqlite:///{db}", port, tmp_path / "public"))
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
        eventually(lambda: get(port, "/subscribe.html").status == 200, "no subscribe.html")
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        answer = get(port, "/subscribe", "POST", "email=wal%40example.com", form)
        assert answer.status == 200
        eventually(
            lambda: in_file_alone(db, "SELECT count(*) FROM subscribers") == 1,
            "the sign-up never reached the database file",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    lines = output.decode().splitlines()
    for where in ("statusbot serve", "web worker", "background process (page)"):
        said = [line for line in lines if f"{where}: " in line]
        assert any("set aside from garbage collection" in line for line in said), lines
