"""Incident numbers stay unique when many writers open incidents at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from bot.runtime import Runtime
from storage.models import Incident


def test_50_incidents_from_10_threads_get_50_distinct_numbers(runtime: Runtime) -> None:
    def open_one(i: int) -> int | None:
        result = runtime.run_line(
            f"/incident open Concurrent {i} -- Opened by a thread.", user="U1"
        )
        assert result.ok, result.reply
        return result.number

    with ThreadPoolExecutor(max_workers=10) as pool:
        numbers = list(pool.map(open_one, range(50)))

    assert sorted(n for n in numbers if n is not None) == list(range(1, 51))
    with runtime.factory() as s:
        stored = s.scalars(select(Incident.number)).all()
    assert sorted(stored) == list(range(1, 51))
