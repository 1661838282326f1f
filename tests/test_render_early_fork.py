"""`statusbot render` forks as soon as the incidents are read: the page is still the
page of one process, and a failure after that fork still fails the render."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.publish import Publisher
from bot.runtime import Runtime
from renderers.html import render_incident
from renderers.parallel import ParallelSite
from renderers.site import render_site, shared_by_incident_pages
from storage.snapshot import Snapshot
from storage.snapshot_cache import SnapshotCache
from tests.test_render_parallel import break_in_child, forking, many_incidents, reaped, tree

__all__ = ["forking"]  # the fixture, used by name


def fill(runtime: Runtime) -> None:
    lines = [
        '/component add API --group "Region 1"',
        "/component add Web",
        "/incident open Errors on the API --components API=partial -- Looking **now**.",
        "/incident update 1 --status identified -- Found it.",
        "/incident open Slow pages --components Web=degraded -- Slow.",
        "/incident resolve 2 -- Fixed.",
        "/maintenance schedule Database upgrade --start tomorrow 22:00 --end tomorrow 23:00",
    ]
    for line in lines:
        result = runtime.run_line(line, user="U1")
        assert result.ok, result.reply


# For each end of an early fork that no render took up: whether its publish still held
# the publisher's lock (early_publisher's publishers append to it).
stopped: list[bool] = []


def early_publisher(runtime: Runtime, root: Path) -> tuple[Publisher, ParallelSite, list[int]]:
    """A publisher as `statusbot render` makes it; the list gathers each early fork's pid."""
    site = ParallelSite(root)
    early: list[int] = []
    stopped.clear()

    def start(snapshot: Snapshot) -> None:
        site.start(snapshot)
        worker = site._worker
        if worker is not None:
            early.append(worker.pid)

    def stop() -> None:
        stopped.append(publisher._lock.locked())
        site.stop()

    publisher = Publisher(
        runtime, root=root, render=site.render, write=site.write, early=start, discard_early=stop
    )
    return publisher, site, early


def test_the_early_fork_writes_the_page_of_one_process(
    forking: list[int], runtime: Runtime, tmp_path: Path
) -> None:
    fill(runtime)
    two, _, early = early_publisher(runtime, tmp_path / "two")
    one = Publisher(runtime, root=tmp_path / "one")

    both = two.publish_all(), one.publish_all()

    assert early and forking == early  # one fork, made during the snapshot's build
    assert both[0] is not None and both[1] is not None
    assert both[0].written == both[1].written and both[0].rendered == both[1].rendered
    assert tree(tmp_path / "two") == tree(tmp_path / "one")
    assert reaped(early[0])


def test_the_early_snapshot_shows_incident_pages_as_the_full_one(
    runtime: Runtime,
) -> None:
    fill(runtime)
    seen: list[Snapshot] = []
    with runtime.reader() as session:
        build = SnapshotCache().build(
            session,
            page=Publisher(runtime).page,
            now=runtime.clock(),
            on_incidents=seen.append,
        )
    full = build.snapshot
    (early,) = seen
    assert early.incidents is full.incidents and early.maintenances is full.maintenances
    assert shared_by_incident_pages(early) == shared_by_incident_pages(full)
    assert early.status == full.status
    assert [(g.code, g.status, g.updated_at) for g in early.groups] == [
        (g.code, g.status, g.updated_at) for g in full.groups
    ]
    for item in (*full.incidents, *full.maintenances):
        assert render_incident(early, item) == render_incident(full, item)


def test_a_render_of_another_snapshot_ends_the_early_child_and_forks_again(
    forking: list[int], tmp_path: Path
) -> None:
    site = ParallelSite(tmp_path)
    site.start(many_incidents(12))
    other = many_incidents(14)

    files = site.render(other)

    assert len(forking) == 2 and reaped(forking[0])
    assert files == render_site(other)
    site.write(tmp_path, files)
    assert sorted(p.name for p in (tmp_path / "incidents").iterdir()) == sorted(
        f"{n}.html" for n in range(1, 15)
    )


def test_a_failure_in_the_child_after_the_early_fork_fails_the_render(
    forking: list[int], monkeypatch: pytest.MonkeyPatch, runtime: Runtime, tmp_path: Path
) -> None:
    fill(runtime)
    root = tmp_path / "page"
    publisher, _, early = early_publisher(runtime, root)
    assert publisher.publish_all() is not None
    before = tree(root)
    break_in_child(monkeypatch)
    assert runtime.run_line("/incident update 1 -- Still on it.", user="U1").ok

    assert publisher.publish_all() is None
    assert len(early) == 2 and reaped(early[1])
    assert tree(root) == before  # the old page, as it was


def test_a_build_that_fails_after_the_early_fork_leaves_no_child(
    forking: list[int], monkeypatch: pytest.MonkeyPatch, runtime: Runtime, tmp_path: Path
) -> None:
    fill(runtime)
    publisher, _, early = early_publisher(runtime, tmp_path / "page")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the charts' query failed")

    monkeypatch.setattr(SnapshotCache, "_metrics", broken)

    assert publisher.publish_all() is None
    assert len(early) == 1
    assert reaped(early[0])  # by the time publish_all returned
    assert stopped and all(stopped)  # ended while the publish held its lock
    assert not (tmp_path / "page" / "index.html").exists()


def test_an_incremental_publish_never_forks_early(
    forking: list[int], runtime: Runtime, tmp_path: Path
) -> None:
    fill(runtime)
    publisher, _, early = early_publisher(runtime, tmp_path / "page")
    assert publisher.publish_all() is not None
    assert runtime.run_line("/incident update 1 -- Still on it.", user="U1").ok

    assert publisher.publish() is not None
    assert len(early) == 1
