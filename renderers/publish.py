"""The one writer that puts the page's files in place, each one atomically.

Every file goes to a temporary file in its own directory, is flushed to disk,
then renamed over the old one: a reader sees the old file or the new one, never
half of either, and a crash leaves the last good page. A file whose bytes have
not changed is not touched at all, so its mtime (and every HTTP cache) stays.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import stat
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path, PurePosixPath

# Files a web server must read, whoever runs it.
FILE_MODE = 0o644
# From this many files on, one sync(2) replaces an fsync per file.
_SYNC_ONCE_FROM = 32
_TEMP_PREFIX = ".statusbot-"
_TEMP_SUFFIX = ".tmp"
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


def content_type(path: str) -> str:
    """The Content-Type header for a file of the page, by its extension."""
    dot = path.rfind(".")
    extension = path[dot:].lower() if dot > path.rfind("/") else ""
    if extension in CONTENT_TYPES:
        return CONTENT_TYPES[extension]
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


class UnsafePath(ValueError):
    """A file name that would land outside the page directory."""


def write_files(root: Path, files: Mapping[str, bytes]) -> list[str]:
    """Write each file under `root` atomically, skipping unchanged ones; returns those written."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = root.resolve()
    # Check every name before writing anything: a bad name aborts the whole set.
    checked: dict[Path, None] = {}
    targets = {name: _target(base, name, checked) for name in files}
    todo = [name for name in _write_order(files) if _differs(targets[name], files[name])]
    for directory in {targets[name].parent for name in todo}:
        directory.mkdir(parents=True, exist_ok=True)
        _inside(base, directory.resolve(), str(directory))
    temps = _stage_all([(targets[name], files[name]) for name in todo])
    done = 0
    try:
        for name, temp in zip(todo, temps, strict=True):
            os.replace(temp, targets[name])
            done += 1
    finally:
        for temp in temps[done:]:
            _discard(temp)
    for directory in {targets[name].parent for name in todo}:
        _sync_directory(directory)
    return todo


def write_manifest(root: Path, names: Collection[str]) -> bool:
    """Record, atomically, that the page is exactly these files; False when already so."""
    root = Path(root)
    data = json.dumps({"files": sorted(names)}, indent=0).encode() + b"\n"
    target = root / MANIFEST
    if not _differs(target, data):
        return False
    os.replace(_stage(target, data, sync=True), target)
    _sync_directory(root)
    return True


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
            target.unlink()
        except FileNotFoundError:
            continue
        removed.append(name)
    return removed


def _target(base: Path, name: str, checked: dict[Path, None] | None = None) -> Path:
    """The path for a file name, refusing anything that could escape the page directory."""
    if not name or "\\" in name or "\x00" in name:
        raise UnsafePath(f"{name!r} is not a usable file name for the page")
    pure = PurePosixPath(name)
    if pure.is_absolute() or any(part in ("..", ".", "") for part in name.split("/")):
        raise UnsafePath(f"{name!r} must be a relative path inside the page directory")
    target = base.joinpath(*pure.parts)
    # A symlinked directory on the way could still lead out: resolve what exists.
    if checked is None or target.parent not in checked:
        _inside(base, target.parent.resolve(), name)
        if checked is not None:
            checked[target.parent] = None
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise UnsafePath(f"{name!r} exists in the page directory and is not a plain file")
    return target


def _inside(base: Path, resolved: Path, name: str) -> None:
    if resolved != base and base not in resolved.parents:
        raise UnsafePath(f"{name!r} resolves outside the page directory")


def _write_order(files: Mapping[str, bytes]) -> list[str]:
    """Deeper files first and index.html last, so the front page never links to a missing page."""
    return sorted(files, key=lambda n: (-n.count("/"), n == "index.html", n))


def _differs(target: Path, data: bytes) -> bool:
    try:
        info = target.stat()
    except FileNotFoundError:
        return True
    if not stat.S_ISREG(info.st_mode) or info.st_size != len(data):
        return True
    return target.read_bytes() != data


def _stage(target: Path, data: bytes, *, sync: bool) -> str:
    """Write `data` to a temporary file next to `target` (synced if asked); returns its path."""
    fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fchmod(out.fileno(), FILE_MODE)
            if sync:
                os.fsync(out.fileno())
    except BaseException:
        _discard(temp)
        raise
    return temp


def _stage_all(items: list[tuple[Path, bytes]]) -> list[str]:
    """Stage every file, durably; on any failure, no temporary file is left behind.

    A few files are synced one by one. Many (a first render: thousands of
    incident pages) are written first and then flushed with one sync(2), which
    on Linux returns once the data is on disk: as durable before the renames,
    and several times faster than thousands of fsyncs.
    """
    one_by_one = len(items) < _SYNC_ONCE_FROM
    temps: list[str] = []
    try:
        for target, data in items:
            temps.append(_stage(target, data, sync=one_by_one))
    except BaseException:
        for temp in temps:
            _discard(temp)
        raise
    if not one_by_one:
        os.sync()
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
