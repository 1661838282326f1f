"""renderers/parallel.py: the page rendered and written on two cores is the page of one."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from bot.publish import Publisher
from bot.runtime import Runtime
from renderers import parallel, publish
from renderers.html import render_incident, stylesheet
from renderers.parallel import ParallelSite, WorkerFailed
from renderers.publish import write_files
from renderers.site import render_site
from storage.snapshot import IncidentView, Snapshot
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


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


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


@pytest.mark.parametrize("incidents", [None, {3, 4, 5, 11}])
def test_the_same_files_written_as_in_one_process(
    forking: list[int], tmp_path: Path, incidents: set[int] | None
) -> None:
    snap = many_incidents()
    site = ParallelSite(tmp_path / "two")

    files = site.render(snap, incidents=incidents)
    written = site.write(tmp_path / "two", files)

    assert len(forking) == 1
    assert files == render_site(snap, incidents=incidents)
    assert written == write_files(tmp_path / "one", files)  # the same names, in the same order
    assert tree(tmp_path / "two") == tree(tmp_path / "one")
    # Again: nothing differs, so nothing is written, by the child or the parent.
    assert site.write(tmp_path / "two", site.render(snap, incidents=incidents)) == []


def test_the_demo_page_too(forking: list[int], tmp_path: Path) -> None:
    snap = demo_snapshot()
    site = ParallelSite(tmp_path)
    files = site.render(snap)
    assert files == render_site(snap)
    assert site.write(tmp_path, files) == write_files(tmp_path / "one", files)


def test_writing_elsewhere_writes_everything(forking: list[int], tmp_path: Path) -> None:
    site = ParallelSite(tmp_path / "two")
    files = site.render(many_incidents())
    assert site.write(tmp_path / "other", files) == write_files(tmp_path / "one", files)
    assert tree(tmp_path / "other") == tree(tmp_path / "one")


def test_a_small_page_is_rendered_without_a_fork(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(parallel.os, "fork", lambda: pytest.fail("forked"))
    snap = many_incidents()
    assert parallel.MIN_PAGES > 12
    site = ParallelSite(tmp_path)
    files = site.render(snap)
    assert files == render_site(snap)
    assert len(site.write(tmp_path, files)) == len(files)


def test_a_process_with_other_threads_never_forks(forking: list[int], tmp_path: Path) -> None:
    snap = many_incidents()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert ParallelSite(tmp_path).render(snap) == render_site(snap)
    finally:
        stop.set()
        other.join()
    assert forking == []


def reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def break_in_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """Incident pages fail to render in any process forked from this one, and only there."""
    parent = os.getpid()

    def broken(snap: Snapshot, item: IncidentView) -> str:
        if os.getpid() != parent:
            raise ValueError("a template bug")
        return render_incident(snap, item)

    monkeypatch.setattr(parallel, "render_incident", broken)


def test_a_failure_in_the_child_fails_the_render_with_its_traceback(
    forking: list[int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    break_in_child(monkeypatch)

    with pytest.raises(WorkerFailed, match=r"(?s)in the child failed.*ValueError: a template bug"):
        ParallelSite(tmp_path).render(many_incidents())
    assert reaped(forking[0])


def test_a_child_that_dies_fails_the_render(
    forking: list[int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    parent = os.getpid()

    def dying(snap: Snapshot, item: IncidentView) -> str:
        if os.getpid() != parent:
            os._exit(3)
        return render_incident(snap, item)

    monkeypatch.setattr(parallel, "render_incident", dying)

    with pytest.raises(WorkerFailed, match="died"):
        ParallelSite(tmp_path).render(many_incidents())
    assert reaped(forking[0])


def test_a_failure_in_the_parent_still_reaps_the_child(
    forking: list[int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(snap: Snapshot, *, incidents: object = None) -> dict[str, bytes]:
        raise ValueError("the index broke")

    monkeypatch.setattr(parallel, "render_site", broken)

    with pytest.raises(ValueError, match="the index broke"):
        ParallelSite(tmp_path).render(many_incidents())
    assert reaped(forking[0])


def test_a_failure_in_the_parent_stops_the_child_putting_pages_in_place(
    forking: list[int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    parent = os.getpid()

    def slow(snap: Snapshot, item: IncidentView) -> str:
        if os.getpid() != parent:
            time.sleep(0.2)  # twelve pages: 2.4 s, if nobody stops it
        return render_incident(snap, item)

    def broken(snap: Snapshot, *, incidents: object = None) -> dict[str, bytes]:
        raise ValueError("the index broke")

    monkeypatch.setattr(parallel, "render_incident", slow)
    monkeypatch.setattr(parallel, "render_site", broken)

    with pytest.raises(ValueError, match="the index broke"):
        ParallelSite(tmp_path).render(many_incidents())
    assert reaped(forking[0])
    pages = list(tmp_path.glob("incidents/*.html"))
    assert len(pages) < 12, "the child went on writing after the render failed"


def test_the_stylesheet_is_in_place_before_the_child_writes_a_page(
    forking: list[int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # After an upgrade the stylesheet's name changes: a page must never link a missing one.
    parent = os.getpid()
    sheet = tmp_path / stylesheet().path

    def checked(snap: Snapshot, item: IncidentView) -> str:
        if os.getpid() != parent and not sheet.exists():
            raise AssertionError("a page was rendered before its stylesheet was in place")
        return render_incident(snap, item)

    monkeypatch.setattr(parallel, "render_incident", checked)
    site = ParallelSite(tmp_path)

    site.write(tmp_path, site.render(many_incidents()))

    assert sheet.read_bytes() == stylesheet().text.encode()


def test_the_childs_failure_to_write_is_the_writes_failure(
    forking: list[int], tmp_path: Path
) -> None:
    root = tmp_path / "file"
    root.write_text("not a directory")
    site = ParallelSite(root)

    files = site.render(many_incidents())

    assert files == render_site(many_incidents())
    with pytest.raises(OSError, match="writing incident pages failed"):
        site.write(root, files)


def test_the_publisher_reports_what_it_wrote_as_before(
    forking: list[int], runtime: Runtime, tmp_path: Path
) -> None:
    for line in ("/component add API", "/incident open Errors -- Looking.", "/incident open Slow"):
        assert runtime.run_line(line, user="U1").ok
    site = ParallelSite(tmp_path / "two")
    two = Publisher(runtime, root=tmp_path / "two", render=site.render, write=site.write)
    one = Publisher(runtime, root=tmp_path / "one")

    both = two.publish_all(), one.publish_all()

    assert len(forking) == 1
    assert both[0] is not None and both[1] is not None
    assert both[0].written == both[1].written and both[0].rendered == both[1].rendered
    assert tree(tmp_path / "two") == tree(tmp_path / "one")


def test_a_child_slowed_down_leaves_the_parent_more_pages(
    forking: list[int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    parent = os.getpid()
    by: list[int] = []

    def slow_in_the_child(snap: Snapshot, item: IncidentView) -> str:
        if os.getpid() != parent:
            threading.Event().wait(0.05)  # as a slow disk would
        else:
            by.append(item.number)
        return render_incident(snap, item)

    monkeypatch.setattr(parallel, "render_incident", slow_in_the_child)
    snap = many_incidents(40)
    site = ParallelSite(tmp_path / "two")

    files = site.render(snap)

    assert files == render_site(snap)
    assert site.write(tmp_path / "two", files) == write_files(tmp_path / "one", files)
    assert tree(tmp_path / "two") == tree(tmp_path / "one")
    assert 10 <= len(by) < 40  # most, not all: the child took a chunk or more


def test_the_writers_releaser_thread_does_not_keep_a_render_from_forking(
    forking: list[int], tmp_path: Path
) -> None:
    # An incremental publish leaves its replaced files to the releaser thread; a full
    # render in the same process still shares its pages with a child.
    write_files(tmp_path / "old", {"a.html": b"old"})
    write_files(tmp_path / "old", {"a.html": b"new"}, release_later=True)
    assert any(t.name == publish.RELEASER_THREAD for t in threading.enumerate())
    site = ParallelSite(tmp_path / "two")
    site.write(tmp_path / "two", site.render(many_incidents()))
    assert len(forking) == 1
    done = threading.Event()
    helper = threading.Thread(target=done.wait)
    helper.start()
    try:
        site.render(many_incidents())
        assert len(forking) == 1  # any other thread still keeps it in one process
    finally:
        done.set()
        helper.join()
