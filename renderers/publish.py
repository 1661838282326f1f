"""The one writer that puts the page's files in place, each one atomically.

Every file goes to a temporary file in its own directory, then is renamed over
the old one: a reader sees the old file or the new one, never half of either. A
file whose bytes have not changed is not touched at all, so its mtime (and every
HTTP cache) stays.

Durability: the files are not fsynced one by one. Every one of them can be
rebuilt from the database, and is: every process that publishes starts with a
full render that rewrites any file whose bytes differ from what it should be
(`statusbot serve` does so when it starts, and `statusbot render` on demand),
so a file that a power cut left short or empty is repaired by the next start.
The atomic rename is what readers need; an fsync per file would buy nothing
the rebuild does not, at most of the cost of writing a large page. Once a
full render's renames are done, each directory it touched is fsynced once, so
the renames reach the disk together (cheap: a few directories). The
incremental publish after each change (bot/publish.py) skips even that: it
writes a dozen files into five directories, where those fsyncs were a tenth of
its writing, and a power cut can only cost it renames that the file system had
not yet committed (ext4 does every few seconds), which the next start's full
render puts back.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import queue
import re
import stat
import tempfile
import threading
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

# Files a web server must read, whoever runs it.
FILE_MODE = 0o644
_TEMP_PREFIX = ".statusbot-"
_TEMP_SUFFIX = ".tmp"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
# The list of the files the page has, beside them. Its name starts with a dot, so the
# web server (which serves only what it lists) can never be asked for it, and the S3
# mirror, which copies only rendered files, never uploads it.
MANIFEST = ".statusbot-published.json"


# The Content-Type of each kind of file the page has, for whoever serves it (the web
# server, the S3 mirror); anything else is guessed from its name.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".atom": "application/atom+xml",
    ".rss": "application/rss+xml",
    ".xml": "application/xml",
    ".ics": "text/calendar; charset=utf-8",
    ".svg": "image/svg+xml",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


# A file whose name carries a hash of its content (the stylesheet, `style.<hash>.css`)
# never changes under that name: whoever serves it lets every cache keep it for a year.
IMMUTABLE = "public, max-age=31536000, immutable"
_FINGERPRINTED = re.compile(r"style\.[0-9a-f]{8,64}\.css")


def fingerprinted(path: str) -> bool:
    """Whether a file of the page is named by its content (so cacheable for good)."""
    return _FINGERPRINTED.fullmatch(path) is not None


def stale_fingerprinted(root: Path, keep: Collection[str]) -> list[str]:
    """The fingerprinted files in `root` that the page no longer links (an older stylesheet)."""
    try:
        names = [entry.name for entry in os.scandir(root) if entry.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    return sorted(name for name in names if fingerprinted(name) and name not in keep)


def content_type(path: str) -> str:
    """The Content-Type header for a file of the page, by its extension."""
    dot = path.rfind(".")
    extension = path[dot:].lower() if dot > path.rfind("/") else ""
    if extension in CONTENT_TYPES:
        return CONTENT_TYPES[extension]
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


class UnsafePath(ValueError):
    """A file name that would land outside the page directory."""


def write_files(
    root: Path, files: Mapping[str, bytes], *, sync: bool = True, release_later: bool = False
) -> list[str]:
    """Write each file under `root` atomically, skipping unchanged ones; returns those written.

    `sync=False` leaves the directories' fsync to the caller (`sync_directories`),
    to make once after several writes. `release_later` (for a few files) leaves
    freeing the replaced files to a thread of their own (`_Releaser`).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = root.resolve()
    # Check every name before writing anything: a bad name aborts the whole set. Paths
    # are strings here: path objects cost more than the kernel's work for a small file.
    checked: dict[str, bool] = {}
    found = {name: _found(base, name, checked) for name in files}
    targets = {name: target for name, (target, _) in found.items()}
    todo = [name for name in write_order(files) if _differs(*found[name], files[name])]
    for directory in {targets[name].rpartition("/")[0] for name in todo}:
        if not checked.get(directory):  # not there when looked at: make it, and look again
            os.makedirs(directory, exist_ok=True)
            _inside(base, Path(directory).resolve(), directory)
    temps = _stage_all([(targets[name], files[name]) for name in todo])
    held: list[int] = []
    hold = release_later and len(todo) <= RELEASE_LIMIT
    done = 0
    try:
        for name, temp in zip(todo, temps, strict=True):
            if hold and found[name][1] is not None:
                with contextlib.suppress(OSError):  # gone meanwhile: nothing to hold
                    held.append(os.open(targets[name], _HOLD))
            os.replace(temp, targets[name])
            done += 1
    finally:
        for temp in temps[done:]:
            _discard(temp)
        if held:
            try:
                _releaser.release(held)
            except BaseException:  # no thread to hand them to (none could start)
                for fd in held:
                    os.close(fd)
                raise
    if sync:
        sync_directories(root, todo)
    return todo


# Replacing a file frees the old one, inside the rename: on this project's ext4 disk
# that was about half the wall time of an incremental publish's writing (12 files,
# 1.1 MB for the benchmark's page), spent waiting on the file system's journal, not
# working. Holding the old file open across the rename leaves the freeing to the
# last close, which a thread of its own makes: the page is in place as soon as the
# renames are. Readers are unaffected (they hold their own references).
RELEASE_LIMIT = 64  # files per write; a full render's thousands are freed as they go
RELEASER_THREAD = "statusbot-release"
# Not blocking: should a name have become a FIFO since it was looked at, no open waits.
_HOLD = (
    os.O_RDONLY
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
)


class _Releaser:
    """Closes, in a daemon thread, the files that `write_files` held across their renames."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[list[int]] | None = None
        self._pid = 0

    def release(self, fds: list[int]) -> None:
        with self._lock:
            if self._queue is None or self._pid != os.getpid():  # first use, or after a fork
                self._queue, self._pid = queue.SimpleQueue(), os.getpid()
                threading.Thread(
                    target=self._run, args=(self._queue,), name=RELEASER_THREAD, daemon=True
                ).start()
            self._queue.put(fds)

    @staticmethod
    def _run(pending: queue.SimpleQueue[list[int]]) -> None:
        while True:
            for fd in pending.get():
                with contextlib.suppress(OSError):
                    os.close(fd)


_releaser = _Releaser()


def sync_directories(root: Path, written: Collection[str]) -> None:
    """Fsync, once each, the directories these files of the page were renamed into."""
    for directory in {(Path(root) / name).parent for name in written}:
        _sync_directory(directory)


def write_manifest(root: Path, names: Collection[str]) -> bool:
    """Record, atomically, that the page is exactly these files; False when already so."""
    root = Path(root)
    data = json.dumps({"files": sorted(names)}, indent=0).encode() + b"\n"
    target = root / MANIFEST
    if not _differs(target, _stat(target), data):
        return False
    os.replace(_stage(target, data), target)
    _sync_directory(root)
    return True


def manifest_stamp(root: Path) -> tuple[int, int, int] | None:
    """The manifest file's identity (inode, mtime, size); None when there is none."""
    info = _stat(Path(root) / MANIFEST)
    return None if info is None else (info.st_ino, info.st_mtime_ns, info.st_size)


def read_manifest(root: Path) -> frozenset[str]:
    """The files the page has, as last recorded; empty when nothing was published yet."""
    try:
        data = json.loads((Path(root) / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return frozenset()
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        return frozenset()
    return frozenset(name for name in files if isinstance(name, str))


def remove_files(root: Path, names: Collection[str]) -> list[str]:
    """Delete some files of the page (a deleted incident's page); returns those removed."""
    base = Path(root).resolve()
    removed = []
    for name in sorted(names):
        target = _target(base, name)
        try:
            os.unlink(target)
        except FileNotFoundError:
            continue
        removed.append(name)
    return removed


def _target(base: Path, name: str) -> str:
    """The path for a file name, refusing anything that could escape the page directory."""
    return _found(base, name)[0]


def _found(
    base: Path, name: str, checked: dict[str, bool] | None = None
) -> tuple[str, os.stat_result | None]:
    """The path for a file name and what is there now (None: nothing), refusing any
    name that could escape the page directory. `checked` remembers, per directory
    looked at, whether it exists."""
    if not name or "\\" in name or "\x00" in name:
        raise UnsafePath(f"{name!r} is not a usable file name for the page")
    parts = name.split("/")
    if name.startswith("/") or any(part in ("..", ".", "") for part in parts):
        raise UnsafePath(f"{name!r} must be a relative path inside the page directory")
    target = f"{base}/{name}"
    directory = target.rpartition("/")[0]
    if checked is None or directory not in checked:
        exists = _directory_inside(base, parts[:-1], directory, name)
        if checked is not None:
            checked[directory] = exists
    info = _stat(target)
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise UnsafePath(f"{name!r} exists in the page directory and is not a plain file")
    return target, info


def _stat(target: str | Path) -> os.stat_result | None:
    """What is at `target`, not following a symlink; None when nothing is."""
    try:
        return os.lstat(target)
    except FileNotFoundError:
        return None


def _directory_inside(base: Path, parts: list[str], directory: str, name: str) -> bool:
    """Whether `directory` (`base` joined with `parts`) exists; raises UnsafePath if it
    leads out of `base`, which is resolved already.

    Plain directories all the way down cannot lead out: one lstat each. A symlinked
    directory on the way (or a file where one should be) could: then what exists is
    resolved, as a whole, and must still be inside.
    """
    path = str(base)
    for part in parts:
        path = f"{path}/{part}"
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return False  # nor anything below it; the caller makes it, then looks again
        if not stat.S_ISDIR(mode):
            _inside(base, Path(directory).resolve(), name)
            return os.path.isdir(directory)
    return True


def _inside(base: Path, resolved: Path, name: str) -> None:
    if resolved != base and base not in resolved.parents:
        raise UnsafePath(f"{name!r} resolves outside the page directory")


def write_order(names: Iterable[str]) -> list[str]:
    """The order to write files in: deeper first and index.html last, so the front page
    never links to a missing page."""
    return sorted(names, key=lambda n: (-n.count("/"), n == "index.html", n))


def _differs(target: str | Path, info: os.stat_result | None, data: bytes) -> bool:
    if info is None or not stat.S_ISREG(info.st_mode) or info.st_size != len(data):
        return True
    with open(target, "rb") as old:
        return old.read() != data


def _stage(target: str | Path, data: bytes) -> str:
    """Write `data` to a temporary file next to `target`; returns its path.

    Not fsynced: see the module's docstring for why the page need not be.
    """
    # A name of its own per process and thread (one publish at a time in each, under
    # the page lock); mkstemp's random names cost more than the write of a small file.
    folder, _, name = str(target).rpartition("/")
    temp = f"{folder}/{_TEMP_PREFIX}{name}.{os.getpid()}-{threading.get_ident()}{_TEMP_SUFFIX}"
    try:
        fd = os.open(temp, _CREATE, FILE_MODE)
    except FileExistsError:
        # Left by a process that died mid-write and had this id: a random name instead.
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=folder)
    try:
        # The file descriptor itself, not a file object: no buffer to fill, no seek,
        # no terminal check; a page is written in one call (more only if cut short).
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, FILE_MODE)  # whatever the umask: the web server reads it
    except BaseException:
        os.close(fd)
        _discard(temp)
        raise
    os.close(fd)
    return temp


def _stage_all(items: list[tuple[str, bytes]]) -> list[str]:
    """Stage every file; on any failure, no temporary file is left behind."""
    temps: list[str] = []
    try:
        for target, data in items:
            temps.append(_stage(target, data))
    except BaseException:
        for temp in temps:
            _discard(temp)
        raise
    return temps


def _discard(temp: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)


def _sync_directory(directory: Path) -> None:
    """Make the renames themselves durable; not every platform can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
