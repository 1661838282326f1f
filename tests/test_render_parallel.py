"""renderers/parallel.py: the page rendered on two cores is the page rendered on one."""

from __future__ import annotations

import os
import threading
from datetime import timedelta

import pytest

from renderers import parallel
from renderers.parallel import WorkerFailed, render_site_in_parallel
from renderers.site import render_site
from storage.snapshot import Snapshot
from tests.test_render_html import NOW, component, demo_snapshot, incident, snapshot


def many_incidents(count: int = 12) -> Snapshot:
    api = component("API")
    items = [
        incident(
            n,
            f"Errors <{n}> on the API",
            [
                ("investigating", f"Looking at **{n}**.", NOW - timedelta(days=n, hours=2)),
                ("resolved", "Fixed & [docs](https://example.com).", NOW - timedelta(days=n)),
            ],
            affected=[api],
        )
        for n in range(1, count + 1)
    ]
    return snapshot([api], incidents=items)


@pytest.fixture
def forking(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Fork for any number of pages; the list gathers the children's pids."""
    monkeypatch.setattr(parallel, "MIN_PAGES", 0)
    pids: list[int] = []
    fork = os.fork

    def counted() -> int:
        pid = fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(parallel.os, "fork", counted)
    return pids


@pytest.mark.parametrize("incidents", [None, {3, 4, 5, 11}, set()])
def test_the_same_bytes_as_in_one_process(forking: list[int], incidents: set[int] | None) -> None:
    snap = many_incidents()

    files = render_site_in_parallel(snap, incidents=incidents)

    assert files == render_site(snap, incidents=incidents)
    assert len(forking) == 1


def test_the_demo_page_too(forking: list[int]) -> None:
    snap = demo_snapshot()
    assert render_site_in_parallel(snap) == render_site(snap)


def test_a_small_page_is_rendered_without_a_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel.os, "fork", lambda: pytest.fail("forked"))
    snap = many_incidents()
    assert parallel.MIN_PAGES > 12
    assert render_site_in_parallel(snap) == render_site(snap)


def test_a_process_with_other_threads_never_forks(
    forking: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = many_incidents()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert render_site_in_parallel(snap) == render_site(snap)
    finally:
        stop.set()
        other.join()
    assert forking == []


def test_a_failure_in_the_child_fails_the_render_with_its_traceback(
    forking: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(snap: Snapshot, item: object) -> str:
        raise ValueError("a template bug")

    monkeypatch.setattr(parallel, "render_incident", broken)

    with pytest.raises(WorkerFailed, match=r"(?s)in the child failed.*ValueError: a template bug"):
        render_site_in_parallel(many_incidents())
    with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
        os.waitpid(forking[0], os.WNOHANG)


def test_a_child_that_dies_fails_the_render(
    forking: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel, "render_incident", lambda snap, item: os._exit(3))

    with pytest.raises(WorkerFailed, match="died"):
        render_site_in_parallel(many_incidents())


def test_a_failure_in_the_parent_still_reaps_the_child(
    forking: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(snap: Snapshot, *, incidents: object = None) -> dict[str, bytes]:
        raise ValueError("the index broke")

    monkeypatch.setattr(parallel, "render_site", broken)

    with pytest.raises(ValueError, match="the index broke"):
        render_site_in_parallel(many_incidents())
    with pytest.raises(ChildProcessError):
        os.waitpid(forking[0], os.WNOHANG)
