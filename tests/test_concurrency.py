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


def test_two_people_resolving_one_incident_at_once_resolve_it_once(runtime: Runtime) -> None:
    import threading

    assert runtime.run_line("/incident open Race", user="U1").ok
    barrier = threading.Barrier(2)
    results = []

    def resolve() -> None:
        barrier.wait()
        results.append(runtime.run_line("/incident resolve 1", user="U1"))

    threads = [threading.Thread(target=resolve) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.ok for r in results) == [False, True]
    assert any("already resolved" in r.reply for r in results)
    with runtime.factory() as s:
        from storage import incidents

        inc = incidents.get(s, number=1)
        assert inc is not None
        assert [u.status for u in inc.updates] == ["investigating", "resolved"]
