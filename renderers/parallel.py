"""The whole page rendered and written on two cores: a forked child does most incident pages.

For `statusbot render` (bot/cli.py): a process with one thread that renders
every file once and exits. While the parent renders the page-wide files (the
index, the history, the JSON, the feeds, the calendar) and a fifth of the
incident pages, a child forked from it renders the other incident pages from
the very same snapshot (inherited, not copied), writes them with the one writer
(renderers/publish.py's write_files: atomic renames, unchanged files left
alone) and hands their bytes back through a pipe. Creating a file is most of
writing one, and costs the kernel far more than rendering it costs Python on
some disks; here it overlaps the parent's rendering. The parent then writes
the rest: the child's files are the deepest, so the front page, written last,
never links to a page not yet there.

A process with other threads renders as `render_site` does, in one process:
forking it could leave the child waiting on a lock one of those held.
"""

from __future__ import annotations

import os
import pickle
import threading
import traceback
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from renderers.html import render_incident
from renderers.publish import write_files, write_order
from renderers.site import incident_page, render_site
from storage.snapshot import IncidentView, Snapshot

# Of every five incident pages, the child does four: the page-wide files take the
# parent about as long as the fifth's worth (on bench/render.py's large page).
PARENT_EVERY = 5
# Fewer pages than this are rendered in one process: the fork would cost more.
MIN_PAGES = 200


class WorkerFailed(RuntimeError):
    """The child rendering incident pages raised or died; its traceback, when it had one."""


class ParallelSite:
    """`render` and `write` for bot/publish.py's Publisher, of the page in `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._done: dict[str, bytes] = {}  # what the child put in place (or found so)
        self._written: list[str] = []  # of those, the files it replaced
        self._failed: str | None = None  # why its writing failed

    def render(
        self, snapshot: Snapshot, *, incidents: Collection[int] | None = None
    ) -> dict[str, bytes]:
        """Path → bytes as `render_site` gives them; most incident pages already written."""
        self._done, self._written, self._failed = {}, [], None
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
            _child(write_end, snapshot, theirs, self.root)
        os.close(write_end)
        try:
            own = render_site(snapshot, incidents=mine)
        except BaseException:
            os.close(read_end)  # the child, if still sending, stops at the closed pipe
            os.waitpid(pid, 0)
            raise
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        self._done, self._written, self._failed = _received(data, status)
        return {**own, **self._done}

    def write(self, root: Path, files: Mapping[str, bytes]) -> list[str]:
        """`write_files` for what the child did not write already; returns every file written."""
        if self._failed is not None:
            raise OSError(self._failed)
        same = Path(root) == self.root
        done = {name for name, data in self._done.items() if same and files.get(name) is data}
        rest = {name: data for name, data in files.items() if name not in done}
        written = [name for name in self._written if name in done]
        written += write_files(root, rest)
        self._done, self._written = {}, []
        return write_order(written)


def _may_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


def _child(fd: int, snapshot: Snapshot, items: Sequence[IncidentView], root: Path) -> None:
    """Render and write `items`' pages, send what it did (or its traceback) down `fd`, and end.

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
        except BaseException:
            payload = pickle.dumps((False, traceback.format_exc()))
        else:
            try:
                written, failed = write_files(root, pages), None
            except (OSError, ValueError) as error:
                written, failed = [], f"writing incident pages in the child failed: {error}"
            payload = pickle.dumps((True, (pages, written, failed)), pickle.HIGHEST_PROTOCOL)
        with os.fdopen(fd, "wb") as pipe:
            pipe.write(payload)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _received(data: bytes, status: int) -> tuple[dict[str, bytes], list[str], str | None]:
    """What the child sent; WorkerFailed when it sent its traceback instead, or died."""
    if not data:
        raise WorkerFailed(f"the child rendering incident pages died (wait status {status})")
    ok, value = pickle.loads(data)  # our own child's bytes, through our own pipe
    if not ok:
        raise WorkerFailed(f"rendering incident pages in the child failed:\n{value}")
    pages, written, failed = value
    return pages, written, failed
