"""The incremental snapshot's cheap checks of what changed, tried where they are weakest:
a build that fails halfway, a deletion and a late row in the same interval, and a
postmortem's edit, which moves no incident row."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from bot.runtime import Runtime
from storage import snapshot_cache
from storage.models import ComponentChange, IncidentUpdate, OutboxEntry
from storage.snapshot import build_snapshot
from storage.snapshot_cache import SnapshotCache
from tests.conftest import FakeClock
from tests.test_snapshot import PAGE, Check, insert_late_update, run


def failing_once(real: Callable[..., Any]) -> Callable[..., Any]:
    """`real`, except that its first call raises the driver's own error, as a disk
    error or a lock timeout does in a raw cursor read (SQLAlchemy does not wrap it)."""
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("disk I/O error")
        return real(*args, **kwargs)

    return flaky


def built_after_a_failure(runtime: Runtime, engine: Engine, cache: SnapshotCache) -> None:
    now = runtime.clock()
    with Session(engine) as session, pytest.raises(sqlite3.OperationalError):
        cache.build(session, page=PAGE, now=now)
    with Session(engine) as session:
        again = cache.build(session, page=PAGE, now=now)
    with Session(engine) as session:
        full = build_snapshot(session, page=PAGE, now=now)
    assert again.snapshot == full


def test_a_first_build_that_fails_leaves_nothing_half_seen(
    runtime: Runtime, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(runtime, *(f"/incident open Errors {n} -- Looking." for n in range(1, 4)))
    monkeypatch.setattr(
        snapshot_cache, "load_incidents", failing_once(snapshot_cache.load_incidents)
    )
    built_after_a_failure(runtime, engine, SnapshotCache())  # not an empty page


def test_a_reload_that_fails_is_made_again(
    runtime: Runtime, engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(runtime, "/incident open Errors -- Looking.")
    cache = SnapshotCache()
    with Session(engine) as session:
        cache.build(session, page=PAGE, now=runtime.clock())
    clock.advance(minutes=1)
    run(runtime, "/incident update 1 -- Fixed the thing.")
    monkeypatch.setattr(
        snapshot_cache, "load_incidents", failing_once(snapshot_cache.load_incidents)
    )
    built_after_a_failure(runtime, engine, cache)  # the new update is shown


def _drop(session: Session, update_id: int) -> None:
    session.execute(delete(ComponentChange).where(ComponentChange.update_id == update_id))
    session.execute(delete(IncidentUpdate).where(IncidentUpdate.id == update_id))


def test_one_update_gone_and_one_late_below_the_top_in_the_same_interval(
    runtime: Runtime, engine: Engine
) -> None:
    """The count and the highest id stay the same; the sum of the ids does not."""
    run(
        runtime,
        "/incident open A -- a1.",
        "/incident update 1 -- a2.",
        "/incident update 1 -- a3.",
        "/incident open B -- b1.",
        "/incident update 2 -- b2.",
    )
    check = Check(runtime)
    check()
    with Session(engine) as session, session.begin():
        session.execute(delete(OutboxEntry))
        ids = sorted(
            session.scalars(select(IncidentUpdate.id).where(IncidentUpdate.incident_id == 1))
        )
        _drop(session, ids[1])  # leaves a free id below the top
    check()
    with Session(engine) as session, session.begin():
        row = session.get(IncidentUpdate, ids[2])
        assert row is not None
        _drop(session, ids[2])  # one gone…
        # …and a slower transaction's row committed below the top
        insert_late_update(session, row, id=ids[1], incident_id=2, code="late0000001")
    assert check() == {1, 2}


def test_a_postmortem_edited_after_publication_is_published(
    runtime: Runtime, clock: FakeClock
) -> None:
    run(
        runtime,
        "/incident open Errors -- Looking.",
        "/incident resolve 1 -- Fixed.",
        "/incident postmortem 1 -- First text.",
        "/incident postmortem 1 --publish",
    )
    check = Check(runtime)
    check()
    clock.advance(minutes=5)
    run(runtime, "/incident postmortem 1 -- Second, corrected text.")
    assert check() == {1}
