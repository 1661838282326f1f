"""The whole page rendered on two cores: a forked child renders most incident pages.

For `statusbot render` (bot/cli.py): a process with one thread that renders
every file once and exits. While the parent renders the page-wide files (the
index, the history, the JSON, the feeds, the calendar) and a fifth of the
incident pages, a child forked from it renders the rest of the incident pages
from the very same snapshot (inherited, not copied) and hands their bytes back
through a pipe. The files are the same bytes `render_site` makes; the parent
alone writes them, with the one writer (renderers/publish.py).

A process with other threads renders as `render_site` does, in one process:
forking it could leave the child waiting on a lock one of those held.
"""

from __future__ import annotations

import os
import pickle
import threading
import traceback
from collections.abc import Collection, Sequence

from renderers.html import render_incident
from renderers.site import incident_page, render_site
from storage.snapshot import IncidentView, Snapshot

# Of every five incident pages, the child renders four: the page-wide files take
# the parent about as long as the other fifth's worth of pages (on the large page
# of bench/render.py), so both finish together.
PARENT_EVERY = 5
# Fewer pages than this are rendered in one process: the fork would cost more.
MIN_PAGES = 200


class WorkerFailed(RuntimeError):
    """The child rendering incident pages raised or died; its traceback, when it had one."""


def render_site_in_parallel(
    snapshot: Snapshot, *, incidents: Collection[int] | None = None
) -> dict[str, bytes]:
    """Path → bytes as `render_site` gives them, the incident pages rendered on two cores."""
    items = [
        item
        for item in (*snapshot.incidents, *snapshot.maintenances)
        if incidents is None or item.number in incidents
    ]
    if len(items) < MIN_PAGES or not _may_fork():
        return render_site(snapshot, incidents=incidents)
    theirs = [item for k, item in enumerate(items) if k % PARENT_EVERY]
    mine = {item.number for k, item in enumerate(items) if not k % PARENT_EVERY}
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child ends in os._exit, where coverage can't see)
        os.close(read_end)
        _child(write_end, snapshot, theirs)
    os.close(write_end)
    try:
        own = render_site(snapshot, incidents=mine)
    except BaseException:
        os.close(read_end)  # the child, if still writing, stops at the closed pipe
        os.waitpid(pid, 0)
        raise
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    return {**own, **_pages(data, status)}


def _may_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


def _child(fd: int, snapshot: Snapshot, items: Sequence[IncidentView]) -> None:
    """Render `items`' pages, send them (or the traceback) down `fd`, and end at once.

    os._exit: the child must not run the parent's exit work, nor close the
    database connections it inherited (the parent's still use them).
    """
    code = 0
    try:
        try:
            pages = {
                incident_page(item.number): render_incident(snapshot, item).encode("utf-8")
                for item in items
            }
            payload = pickle.dumps((True, pages), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:
            payload = pickle.dumps((False, traceback.format_exc()))
        with os.fdopen(fd, "wb") as pipe:
            pipe.write(payload)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _pages(data: bytes, status: int) -> dict[str, bytes]:
    """The pages the child sent; WorkerFailed when it sent its traceback instead, or died."""
    if not data:
        raise WorkerFailed(f"the child rendering incident pages died (wait status {status})")
    ok, value = pickle.loads(data)  # our own child's bytes, through our own pipe
    if not ok:
        raise WorkerFailed(f"rendering incident pages in the child failed:\n{value}")
    pages: dict[str, bytes] = value
    return pages
