"""Publishing the public page: snapshot, render, write, after every change.

`Publisher.publish()` builds the snapshot incrementally (only what changed is
reread), renders the page-wide files and the pages of the incidents that
changed, and writes what differs. Anything that goes wrong is logged and leaves
the last good page in place; what was owed is rendered by the next publish.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection

from bot.runtime import Runtime
from bot.settings import Settings
from commands.result import Result
from renderers.publish import (
    manifest_stamp,
    remove_files,
    stale_fingerprinted,
    write_files,
    write_manifest,
)
from renderers.site import (
    incident_page,
    render_site,
    same_incident_page,
    shared_by_incident_pages,
)
from storage.locks import PageLock, end_reading
from storage.snapshot import IncidentView, PageInfo, Snapshot
from storage.snapshot_cache import SnapshotCache

log = logging.getLogger(__name__)

Render = Callable[..., dict[str, bytes]]
# Puts rendered files under a directory; returns those it replaced (write_files).
Write = Callable[[Path, Mapping[str, bytes]], list[str]]

_INCIDENT_PAGE = re.compile(r"\d+\.html")


class Mirror(Protocol):
    """Somewhere the page is copied to after each local write (bot/s3.py's S3Publisher)."""

    def publish(self, files: Mapping[str, bytes]) -> list[str]:
        """Copy new and changed files; returns what was uploaded."""
        ...

    def remove(self, paths: Collection[str]) -> list[str]:
        """Delete files the page no longer has."""
        ...

    def resync(self) -> None:
        """Forget what it believes is uploaded; the next publish looks again."""
        ...


class _FromSettings:
    """The default mirror: S3 when STATUSBOT_S3_BUCKET is set, else none."""


FROM_SETTINGS = _FromSettings()


@dataclass(frozen=True, slots=True)
class Report:
    """What one publish did, and how long each step took (seconds)."""

    full: bool
    rendered: int
    written: tuple[str, ...]
    removed: tuple[str, ...] = ()
    snapshot_seconds: float = 0.0
    render_seconds: float = 0.0
    write_seconds: float = 0.0
    incidents: frozenset[int] = field(default_factory=frozenset)  # incident pages rendered
    mirrored: tuple[str, ...] = ()  # keys uploaded to the mirror
    mirror_error: str | None = None  # the local page is published; the mirror is behind

    @property
    def seconds(self) -> float:
        """The whole publish."""
        return self.snapshot_seconds + self.render_seconds + self.write_seconds


def page_info(settings: Settings) -> PageInfo:
    """The page's identity from the settings; its id is derived from its URL, so it is stable."""
    return PageInfo(
        id=settings.page_id,
        name=settings.page_name,
        url=settings.page_url,
        time_zone=settings.timezone,
        support_email=settings.support_email,
        app_url=settings.app_url,
    )


class Publisher:
    """Keeps the page in STATUSBOT_PAGE_DIR current; safe to call from several threads."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        root: Path | None = None,
        render: Render = render_site,
        write: Write | None = None,  # None: write_files
        mirror: Mirror | _FromSettings | None = FROM_SETTINGS,
        # A full render's snapshot as far as incident pages need it, once it is read
        # (renderers/parallel.py's ParallelSite.start: they render while the rest is),
        # and what ends whatever `early` started and no render took up (ParallelSite.stop).
        early: Callable[[Snapshot], None] | None = None,
        discard_early: Callable[[], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.mirror = _mirror(runtime.settings) if isinstance(mirror, _FromSettings) else mirror
        self.root = Path(root if root is not None else runtime.settings.page_dir)
        self.page = page_info(runtime.settings)
        self._render = render
        self._write = write
        self._early = early
        self._discard_early = discard_early
        self._cache = SnapshotCache()
        self._lock = threading.Lock()
        self._page_lock = PageLock(runtime.engine)
        # Incident pages a failed publish did not get to write; the next one renders them.
        self._owed: set[int] = set()
        self._owe_all = False
        self._hints: set[int] = set()
        # What every incident page shows besides its incident, as last published.
        self._shared: tuple[object, ...] | None = None
        # Each incident's view as its page was last written from, to skip pages that
        # would come out the same (a component's change touches every incident naming it).
        self._shown: dict[int, IncidentView] = {}
        self.last_snapshot: Snapshot | None = None
        # The incident pages of the numbers last published, and the manifest as last
        # written (its names and its file's identity), to skip writing it again.
        self._pages: tuple[frozenset[int], frozenset[str]] = (frozenset(), frozenset())
        self._manifest: tuple[frozenset[str], tuple[int, int, int] | None] | None = None

    def attach(self) -> Publisher:
        """Publish after every change the runtime makes (shell, `run`, Slack)."""
        self.runtime.after_change.append(self.on_change)
        return self

    def on_change(self, result: Result) -> None:
        """The runtime's after-change hook: republish, naming the incidents the change touched."""
        numbers = {n.number for n in result.notices if n.number is not None}
        if result.number is not None:
            numbers.add(result.number)
        self.publish(dirty=numbers)

    def publish(self, *, dirty: Collection[int] = ()) -> Report | None:
        """Bring the page up to date; None when it failed (logged, last good page kept)."""
        with self._lock, self._page_lock.held() as locked, _collector_paused():
            self._hints.update(dirty)
            return _timed(self.runtime.settings, lambda: self._publish(locked, full=False))

    def publish_all(self) -> Report | None:
        """Render every file from scratch and write what differs; None when it failed."""
        with self._lock, self._page_lock.held() as locked, _collector_paused():
            self._cache = SnapshotCache()
            try:
                return _timed(self.runtime.settings, lambda: self._publish(locked, full=True))
            finally:
                # Under the page lock still: a child forked early that no render took up
                # (the build failed, or was interrupted) must not write past it.
                if self._discard_early is not None:
                    self._discard_early()

    def _publish(self, locked: Connection | None, *, full: bool) -> Report | None:
        """One publish; `locked`: the page lock's connection to read from (PostgreSQL),
        already in a transaction that sees one moment (storage/locks.py)."""
        started = time.perf_counter()
        try:
            reader = (
                self.runtime.reader()
                if locked is None
                else self.runtime.reader(bind=locked, join_transaction_mode="rollback_only")
            )
            with reader as session:
                build = self._cache.build(
                    session,
                    page=self.page,
                    now=self.runtime.clock(),
                    dirty=self._hints,
                    on_incidents=self._early if full else None,
                )
        except Exception:  # the database, its driver's own errors, or a bug
            log.exception("could not read the page's state; the published page is unchanged")
            # The cache may be half updated: start afresh next time.
            self._cache = SnapshotCache()
            return None
        self._hints.clear()
        shared = shared_by_incident_pages(build.snapshot)
        full = full or build.full or self._owe_all or shared != self._shared
        if full:
            try:
                end_reading(locked)  # rendering every page takes a while (storage/locks.py)
            except Exception:  # the connection, and the page lock with it, is gone
                log.exception("lost the page lock; the published page is unchanged")
                self._owe(full, ())
                return None
        views = {i.number: i for i in (*build.snapshot.incidents, *build.snapshot.maintenances)}
        wanted = {n for n in build.changed if self._page_differs(views.get(n))} | self._owed
        snapshotted = time.perf_counter()
        try:
            files = self._render(build.snapshot, incidents=None if full else wanted)
        except Exception:
            # A template bug must not take the page down: keep the last good one.
            log.exception("rendering the page failed; the published page is unchanged")
            self._owe(full, wanted)
            return None
        rendered = time.perf_counter()
        try:
            if self._write is not None:
                written = self._write(self.root, files)
            else:
                # An incremental publish leaves its renames to the file system's own
                # journal, and freeing the files it replaced to a thread of their own
                # (renderers/publish.py says why): both were its writing's wait.
                written = write_files(self.root, files, sync=full, release_later=not full)
            removed = self._prune(build.snapshot, build.removed, files, full=full)
            # What the web server may serve: this render's files, and the incident pages
            # an incremental render left as they were; nothing else in the directory.
            self._record_manifest(frozenset(views), files)
        except (OSError, ValueError):
            log.exception(
                "writing the page to %s failed; files not yet replaced are unchanged", self.root
            )
            self._owe(full, wanted)
            return None
        self._owed.clear()
        self._owe_all = False
        self._shared = shared
        if full:
            self._shown = views
        else:
            self._shown.update((n, views[n]) for n in wanted if n in views)
        self.last_snapshot = build.snapshot
        done = time.perf_counter()
        numbers = _numbers(build.snapshot) if full else frozenset(wanted)
        mirrored, mirror_error = self._copy(files, removed, locked)
        return Report(
            full=full,
            rendered=len(files),
            written=tuple(written),
            removed=tuple(removed),
            snapshot_seconds=snapshotted - started,
            render_seconds=rendered - snapshotted,
            write_seconds=done - rendered,
            incidents=numbers,
            mirrored=tuple(mirrored),
            mirror_error=mirror_error,
        )

    def _copy(
        self, files: Mapping[str, bytes], removed: Collection[str], locked: Connection | None
    ) -> tuple[list[str], str | None]:
        """Bring the mirror up to date; its failure is logged and retried by the next publish."""
        if self.mirror is None:
            return [], None
        try:
            # Listing and uploading take a while: end the read first, as a full render
            # does, so that no server timeout for an idle transaction ends the session
            # (and the page lock) meanwhile, and its tables are not kept locked.
            end_reading(locked)
        except Exception as error:  # the connection, and the page lock with it, is gone
            log.error("lost the page lock before copying the page to %s: %s", self.mirror, error)
            # Not copied, and already forgotten as owed: the next publish renders and
            # copies every file (the mirror keeps what it has until then).
            self._owe_all = True
            return [], f"lost the page lock: {error}"
        if self.runtime.engine.dialect.name == "postgresql":
            # Other processes publish too: what this one remembers uploading may
            # have been replaced since, and skipping a file "already there" would
            # leave theirs. Under the page lock, look at the bucket afresh.
            self.mirror.resync()
        try:
            uploaded = self.mirror.publish(files)
            if removed:
                self.mirror.remove(removed)
        except (RuntimeError, ValueError, OSError) as error:
            log.error("copying the page to %s failed: %s", self.mirror, error)
            return [], str(error)
        return uploaded, None

    def _record_manifest(self, numbers: frozenset[int], files: Collection[str]) -> None:
        """Write the manifest unless it already lists exactly these files, as this publisher
        last wrote it (the same file: another process's publish replaces it)."""
        if self._pages[0] != numbers:
            self._pages = (numbers, frozenset(incident_page(n) for n in numbers))
        names = frozenset({*files, *self._pages[1]})
        stamp = manifest_stamp(self.root)
        if self._manifest == (names, stamp) and stamp is not None:
            return
        write_manifest(self.root, names)
        self._manifest = (names, manifest_stamp(self.root))

    def _page_differs(self, view: IncidentView | None) -> bool:
        """Whether an incident's page, as last written, would now come out different."""
        if view is None:
            return True
        before = self._shown.get(view.number)
        return before is None or not same_incident_page(before, view)

    def _owe(self, full: bool, wanted: Collection[int]) -> None:
        self._owe_all = self._owe_all or full
        self._owed.update(wanted)

    def _prune(
        self, snapshot: Snapshot, removed: Collection[int], files: Collection[str], *, full: bool
    ) -> list[str]:
        """Delete the pages of incidents that no longer exist, and stylesheets no page links.

        An older `style.<hash>.css` goes once the pages that linked it are replaced:
        they are (a new stylesheet means a new release, whose first publish is full).
        """
        stale = {incident_page(n) for n in removed}
        stale.update(stale_fingerprinted(self.root, files))
        if full:
            folder = self.root / "incidents"
            keep = {incident_page(n) for n in _numbers(snapshot)}
            if folder.is_dir():
                stale |= {
                    f"incidents/{p.name}"
                    for p in folder.iterdir()
                    if _INCIDENT_PAGE.fullmatch(p.name)
                } - keep
        return remove_files(self.root, stale) if stale else []


def _mirror(settings: Settings) -> Mirror | None:
    if not settings.s3_bucket:
        return None
    from bot.s3 import S3Publisher

    return S3Publisher.from_settings(settings)


def attach_publisher(runtime: Runtime) -> Publisher:
    """A publisher hooked into the runtime, so every change republishes the page."""
    return Publisher(runtime).attach()


def _numbers(snapshot: Snapshot) -> frozenset[int]:
    return frozenset(i.number for i in (*snapshot.incidents, *snapshot.maintenances))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection during one publish; it resumes (and catches up) after.

    A publish allocates hundreds of thousands of objects, nearly all acyclic
    (frozen snapshot values, strings, tuples), while the snapshot cache keeps a
    large heap alive: the collector's full passes over that heap were about a
    tenth of a full render and, landing in one incremental publish in ten, its
    slowest case. Freed objects still go at once by reference counting; only
    cycles (a few, from the template engine) wait for the collector's next pass.
    """
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _timed(settings: Settings, publish: Callable[[], Report | None]) -> Report | None:
    """One publish, its duration counted for the operators (bot/instruments.py).

    Only where the metrics are exposed: `statusbot render` and other one-off
    commands then never load prometheus_client.
    """
    if not (settings.metrics or settings.metrics_port is not None):
        return publish()
    from bot import instruments

    started = time.perf_counter()
    try:
        return publish()
    finally:
        instruments.instruments().publish.observe(time.perf_counter() - started)
