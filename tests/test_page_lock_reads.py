"""The page lock's connection is the publisher's reader (PostgreSQL): what it reads
comes after the lock, the lock is let go of whatever happens, a dead backend is
recovered from."""

from __future__ import annotations

import gc
import logging
import random
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError

from bot.publish import Publisher
from bot.runtime import Runtime
from storage.db import make_engine
from storage.locks import PageLock, end_reading, exclusive
from tests.test_publish import run


@pytest.fixture
def pg(engine: Engine) -> Engine:
    if engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's; SQLite runs in one process")
    return engine


@pytest.fixture
def other(pg: Engine) -> Iterator[Engine]:
    """A second engine on the same database: another process's pool."""
    eng = make_engine(pg.url.render_as_string(hide_password=False))
    yield eng
    eng.dispose()


@pytest.fixture
def key() -> int:
    """A lock of this test's own: advisory locks are the database's, and other test
    runs may publish beside this one (in schemas of their own, with PAGE_LOCK)."""
    return random.getrandbits(62)


def lock_is_free(engine: Engine, key: int) -> bool:
    with engine.connect() as conn:
        taken = conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
        if taken:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        conn.commit()
    return bool(taken)


def backend_of(conn: object) -> int:
    return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())  # type: ignore[attr-defined]


def terminate(engine: Engine, pid: int) -> None:
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        conn.commit()
    wait_gone(engine, pid)


def wait_gone(engine: Engine, pid: int) -> None:
    for _ in range(100):  # a backend goes asynchronously
        with engine.connect() as conn:
            gone = not conn.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
            )
        if gone:
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} still there")


def test_a_waiting_publisher_reads_what_was_committed_while_it_waited(
    pg: Engine, other: Engine, key: int
) -> None:
    with pg.begin() as conn:
        conn.execute(text("CREATE TABLE seen (x int)"))
    holding, seen = threading.Event(), []

    def second() -> None:
        assert holding.wait(5)
        with exclusive(other, key) as conn:
            assert conn is not None
            seen.append(conn.exec_driver_sql("SELECT count(*) FROM seen").scalar_one())

    waiter = threading.Thread(target=second)
    waiter.start()
    with exclusive(pg, key):
        holding.set()
        time.sleep(0.3)  # the second is waiting for the lock by now
        with pg.begin() as conn:  # the first publisher's state, committed under its lock
            conn.execute(text("INSERT INTO seen VALUES (1)"))
    waiter.join()
    assert seen == [1]  # its snapshot was taken after it got the lock, not before


def test_the_block_reads_one_moment_read_only_and_lets_go_after(
    pg: Engine, other: Engine, key: int
) -> None:
    with exclusive(pg, key) as conn:
        assert conn is not None
        assert not lock_is_free(other, key)
        level = conn.exec_driver_sql("SHOW transaction_isolation").scalar_one()
        assert level == "repeatable read"
        pid = backend_of(conn)
    assert lock_is_free(other, key)
    with other.connect() as check:  # no transaction left open on the pooled connection
        state = check.scalar(text("SELECT state FROM pg_stat_activity WHERE pid = :p"), {"p": pid})
    assert state == "idle"
    with exclusive(pg, key) as conn, pytest.raises(DBAPIError, match="read-only"):
        assert conn is not None
        conn.exec_driver_sql("CREATE TABLE nope (x int)")
    assert lock_is_free(other, key)


def test_an_error_in_the_block_lets_go_of_the_lock(pg: Engine, other: Engine, key: int) -> None:
    with pytest.raises(DBAPIError), exclusive(pg, key) as conn:
        assert conn is not None
        conn.exec_driver_sql("SELECT 1 / 0")  # the transaction is aborted
    assert lock_is_free(other, key)
    with exclusive(pg, key) as conn:  # and the pooled connection is fine
        assert conn is not None
        assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1


def test_a_backend_terminated_in_the_pool_is_replaced(pg: Engine, other: Engine, key: int) -> None:
    with exclusive(pg, key) as conn:
        assert conn is not None
        pid = backend_of(conn)
    terminate(other, pid)
    with exclusive(pg, key) as conn:
        assert conn is not None
        assert backend_of(conn) != pid
    assert lock_is_free(other, key)


def test_a_backend_terminated_while_held_fails_the_read_not_the_unlock(
    pg: Engine, other: Engine, key: int
) -> None:
    with pytest.raises(DBAPIError), exclusive(pg, key) as conn:
        assert conn is not None
        terminate(other, backend_of(conn))
        conn.exec_driver_sql("SELECT 1")
    assert lock_is_free(other, key)
    with exclusive(pg, key) as conn:
        assert conn is not None
        assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1


def test_a_publisher_recovers_from_its_backends_being_terminated(
    pg: Engine, other: Engine, runtime: Runtime, tmp_path: Path
) -> None:
    pids: set[int] = set()

    @event.listens_for(pg, "connect")
    def _record(dbapi_conn: Any, _record: object) -> None:
        pids.add(dbapi_conn.info.backend_pid)

    pg.dispose()  # from now on every connection of the runtime's is recorded
    publisher = Publisher(runtime, root=tmp_path / "page")
    run(runtime, "/component add API")
    assert publisher.publish_all() is not None
    for pid in list(pids):  # only this test's own: other tests share the server
        terminate(other, pid)
    run(runtime, "/incident open API errors --components API=partial -- Looking.")
    report = publisher.publish(dirty={1})
    assert report is not None and report.incidents == {1}
    with other.connect() as conn:  # let go of (its kept connection is among these)
        held = conn.scalar(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = ANY(:p)"),
            {"p": list(pids)},
        )
    assert held == 0


def test_a_page_lock_keeps_its_connection_and_checks_none_out(pg: Engine, key: int) -> None:
    checkouts: list[object] = []
    event.listen(pg, "checkout", lambda *args: checkouts.append(args))
    lock = PageLock(pg, key)
    with lock.held() as conn:
        assert conn is not None
        pid = backend_of(conn)
    with lock.held() as conn:
        assert conn is not None
        assert backend_of(conn) == pid
        assert conn.exec_driver_sql("SHOW transaction_isolation").scalar_one() == "repeatable read"
    assert len(checkouts) == 1  # the second block pinged nothing
    lock.close()


def test_a_page_lock_whose_backend_was_terminated_takes_another(
    pg: Engine, other: Engine, caplog: pytest.LogCaptureFixture, key: int
) -> None:
    lock = PageLock(pg, key)
    with lock.held() as conn:
        assert conn is not None
        pid = backend_of(conn)
    terminate(other, pid)  # while kept, between two publishes
    with caplog.at_level(logging.INFO, logger="storage.locks"), lock.held() as conn:
        assert conn is not None
        assert backend_of(conn) != pid
        assert not lock_is_free(other, key)  # held, on the new connection
    assert "was gone" in caplog.text
    assert lock_is_free(other, key)
    lock.close()


def test_page_locks_of_two_engines_take_turns(pg: Engine, other: Engine, key: int) -> None:
    first, second = PageLock(pg, key), PageLock(other, key)
    spans: list[tuple[float, float]] = []
    holding = threading.Event()

    def hold(lock: PageLock, wait: bool) -> None:
        for _ in range(3):  # kept connections, from the second round on
            if wait:
                assert holding.wait(5)
            with lock.held():
                began = time.monotonic()
                holding.set()
                time.sleep(0.05)
                spans.append((began, time.monotonic()))

    threads = [threading.Thread(target=hold, args=(first, False))]
    threads.append(threading.Thread(target=hold, args=(second, True)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans.sort()
    assert len(spans) == 6
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in pairwise(spans))
    first.close()
    second.close()


def test_ending_the_read_early_keeps_the_lock(pg: Engine, other: Engine, key: int) -> None:
    lock = PageLock(pg, key)
    with lock.held() as conn:
        assert conn is not None
        pid = backend_of(conn)
        end_reading(conn)
        with other.connect() as check:
            state = check.scalar(
                text("SELECT state FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
            )
        assert state == "idle"  # no snapshot held while a full render goes on
        assert not lock_is_free(other, key)
    assert lock_is_free(other, key)
    with lock.held() as conn:  # the kept connection is as good as before
        assert conn is not None
        assert conn.exec_driver_sql("SHOW transaction_isolation").scalar_one() == "repeatable read"
    lock.close()


def test_a_page_lock_dropped_without_closing_closes_its_connection(
    pg: Engine, other: Engine, key: int
) -> None:
    lock = PageLock(pg, key)
    with lock.held() as conn:
        assert conn is not None
        pid = backend_of(conn)
    del lock, conn
    gc.collect()
    wait_gone(other, pid)
