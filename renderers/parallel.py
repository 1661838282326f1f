"""The whole page rendered and written on two cores: a forked child shares the incident pages.

For `statusbot render` (bot/cli.py): a process with one thread that renders
every file once and exits. A child forked from it as soon as the snapshot's
build has read the incidents (`start`, before uptime and charts: an incident
page shows neither) renders incident pages from those very values (inherited,
not copied) and writes them at once with the one writer (renderers/publish.py's
write_files: atomic renames, unchanged files left alone), while the parent reads
the rest of the snapshot, renders the page-wide files (the index, the history,
the JSON, the feeds, the calendar) and then renders incident pages too. A render
whose snapshot is not the one the child started on (other incident views, other
group names) ends that child and forks afresh. They share the pages out in chunks, each taken by
whichever process is free first, so the split suits the disk: creating a file
costs the kernel anything from a tenth to four times what rendering it costs
Python, here. The child hands what it rendered back through a pipe; the parent
writes its own pages and the page-wide files once the child is done (one
process creating files at a time), the page-wide ones last, so the front page
never links to a page not yet there. The child puts the stylesheet in place
before any page that links it, and is killed if the parent's render fails.

A process with other threads (but the writer's releaser) renders as
`render_site` does, in one process: forking it could leave the child waiting
on a lock one of those held.
"""

from __future__ import annotations

import gc
import itertools
import os
import pickle
import signal
import threading
import traceback
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from renderers.html import render_incident, stylesheet
from renderers.publish import RELEASER_THREAD, sync_directories, write_files, write_order
from renderers.site import incident_page, render_site, shared_by_incident_pages
from storage.snapshot import IncidentView, Snapshot

# The incident pages go in this many chunks at most, each to whichever process is
# free first (one byte a chunk in a pipe: 255 at most).
MAX_TICKETS = 200
# Fewer pages than this are rendered in one process: the fork would cost more.
MIN_PAGES = 200


class WorkerFailed(RuntimeError):
    """The child rendering incident pages raised or died; its traceback, when it had one."""


@dataclass(slots=True)
class _Worker:
    """A child rendering incident pages of `snapshot`: its pid, the read end of the pipe
    it reports on, the tickets it and the parent take chunks with, and the chunks."""

    snapshot: Snapshot
    pid: int
    results: int
    tickets: int
    chunks: list[Sequence[IncidentView]]


class ParallelSite:
    """`render` and `write` for bot/publish.py's Publisher, of the page in `root`; and
    `start`, its `early` hook, to fork as soon as the incidents are read."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # The incident pages the child put in place (or found so).
        self._done: dict[str, bytes] = {}
        self._written: list[str] = []  # of those, the files it replaced
        self._failed: str | None = None  # why its writing failed
        self._worker: _Worker | None = None  # forked by `start`, not yet given its render

    def start(self, snapshot: Snapshot) -> None:
        """Fork the child now, on what incident pages need (the snapshot's build hands it
        over before it reads uptime and charts): it renders incident pages while the
        parent reads on. `render` then takes it up, if its snapshot has those very
        incidents; a build that fails never calls `render`: `stop` ends the child."""
        self.stop()
        items = [*snapshot.incidents, *snapshot.maintenances]
        if len(items) >= MIN_PAGES and _may_fork():
            self._worker = _fork(snapshot, items, self.root)

    def stop(self) -> None:
        """End a child `start` forked that no render took up (each page it wrote is whole)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            _kill(worker)

    def render(
        self, snapshot: Snapshot, *, incidents: Collection[int] | None = None
    ) -> dict[str, bytes]:
        """Path → bytes as `render_site` gives them; the child's pages already written."""
        self._done, self._written, self._failed = {}, [], None
        worker, self._worker = self._worker, None
        if worker is not None and not (incidents is None and _same_pages(worker, snapshot)):
            _kill(worker)
            worker = None
        if worker is None:
            items = [
                item
                for item in (*snapshot.incidents, *snapshot.maintenances)
                if incidents is None or item.number in incidents
            ]
            if len(items) < MIN_PAGES or not _may_fork():
                return render_site(snapshot, incidents=incidents)
            worker = _fork(snapshot, items, self.root)
        try:
            own = render_site(snapshot, incidents=())
            # Rendered only: written after the child is done, by `write`. Two processes
            # creating files in one directory at once cost the kernel more than one
            # doing it all (on this machine's disk, +40% CPU), and gain no time.
            for chunk in _claimed(worker.tickets, worker.chunks):
                own.update(_pages(snapshot, chunk))
        except BaseException:
            # The render failed: the child must not go on putting pages in place (each
            # file it has written is whole; the next render completes the rest).
            _kill(worker)
            raise
        os.close(worker.tickets)
        with os.fdopen(worker.results, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(worker.pid, 0)
        self._done, self._written, self._failed = _received(data, status)
        return {**own, **self._done}

    def write(self, root: Path, files: Mapping[str, bytes]) -> list[str]:
        """`write_files` for what `render` did not write already; returns every file written."""
        if self._failed is not None:
            raise OSError(self._failed)
        same = Path(root) == self.root
        done = {name for name, data in self._done.items() if same and files.get(name) is data}
        rest = {name: data for name, data in files.items() if name not in done}
        written = [name for name in self._written if name in done]
        written += write_files(root, rest)
        self._done, self._written = {}, []
        return write_order(written)


def _same_pages(worker: _Worker, snapshot: Snapshot) -> bool:
    """Whether the child's pages are `snapshot`'s: the very incident views (a build hands
    the same tuples to `start` and to its snapshot), and the same page and groups."""
    early = worker.snapshot
    return (
        early.incidents is snapshot.incidents
        and early.maintenances is snapshot.maintenances
        and shared_by_incident_pages(early) == shared_by_incident_pages(snapshot)
    )


def _fork(snapshot: Snapshot, items: Sequence[IncidentView], root: Path) -> _Worker:
    """A child rendering and writing chunks of `items` until the tickets run out."""
    size = -(-len(items) // MAX_TICKETS)
    chunks = [items[k : k + size] for k in range(0, len(items), size)]
    tickets = _tickets(len(chunks))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child ends in os._exit, where coverage can't see)
        os.close(read_end)
        _child(write_end, snapshot, _claimed(tickets, chunks), root)
    os.close(write_end)
    return _Worker(snapshot, pid, read_end, tickets, chunks)


def _kill(worker: _Worker) -> None:
    os.kill(worker.pid, signal.SIGKILL)
    os.close(worker.results)
    os.close(worker.tickets)
    os.waitpid(worker.pid, 0)


def _may_fork() -> bool:
    # The writer's releaser thread (renderers/publish.py) holds nothing a child could
    # wait on: it only closes files, and a child starts a releaser of its own.
    others = [t for t in threading.enumerate() if t.name != RELEASER_THREAD]
    return hasattr(os, "fork") and len(others) == 1


def _tickets(count: int) -> int:
    """A pipe holding one byte per chunk of pages, 0 to count - 1; returns its read end.

    Whoever reads a byte renders that chunk: a read takes bytes from a pipe one
    reader at a time, so each chunk goes to exactly one of the two processes, and
    the one that is ahead (the child, while the parent renders the page-wide
    files; the parent, while the child waits on the disk) takes more of them.
    """
    read_end, write_end = os.pipe()
    os.write(write_end, bytes(range(count)))  # ≤ 255 bytes: far below a pipe's buffer
    os.close(write_end)  # once they are all taken, a read finds the end
    return read_end


def _claimed(
    tickets: int, chunks: Sequence[Sequence[IncidentView]]
) -> Iterator[Sequence[IncidentView]]:
    """Every chunk this process takes a ticket for, until none is left."""
    while ticket := os.read(tickets, 1):
        yield chunks[ticket[0]]


def _pages(snapshot: Snapshot, items: Iterable[IncidentView]) -> dict[str, bytes]:
    return {
        incident_page(item.number): render_incident(snapshot, item).encode("utf-8")
        for item in items
    }


def _share(
    snapshot: Snapshot,
    chunks: Iterable[Sequence[IncidentView]],
    root: Path,
    *,
    lead: Mapping[str, bytes],
) -> tuple[dict[str, bytes], list[str], str | None]:
    """Write `lead` (what must be in place before any page), then render chunks of pages
    while there are any, writing each at once (the directory's fsync is left for the
    end); returns the files, those written, and why writing stopped.

    Written as they come, the files keep the kernel creating them all along (its
    share of the work, and on some disks most of it), and a process the disk
    slows takes fewer chunks. After a failed write it still renders what it took:
    the page comes out whole, and the publish fails as a write, to be retried.
    """
    pages: dict[str, bytes] = {}
    written: list[str] = []
    failed = None
    for batch in itertools.chain([lead], (_pages(snapshot, chunk) for chunk in chunks)):
        pages.update(batch)
        if failed is None:
            try:
                written += write_files(root, batch, sync=False)
            except (OSError, ValueError) as error:
                failed = f"writing incident pages failed: {error}"
    return pages, written, failed


def _child(
    fd: int, snapshot: Snapshot, chunks: Iterable[Sequence[IncidentView]], root: Path
) -> None:
    """Take its share of the pages, send what it did (or its traceback) down `fd`, and end.

    os._exit: the child must not run the parent's exit work, nor close the
    database connections it inherited (the parent's still use them).
    """
    # Its heap is the parent's, shared until written: a collection would write to every
    # object in it (and so copy it). What it allocates is freed at its os._exit.
    gc.disable()
    code = 0
    try:
        try:
            # The stylesheet first: every page links it, and a new one (after an
            # upgrade) must be in place before the first page that links it.
            sheet = stylesheet()
            lead = {sheet.path: sheet.text.encode("utf-8")}
            pages, written, failed = _share(snapshot, chunks, root, lead=lead)
            if failed is None:
                sync_directories(root, written)
        except BaseException:
            payload = pickle.dumps((False, traceback.format_exc()))
        else:
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
