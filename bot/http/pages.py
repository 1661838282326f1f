"""The public page: the files in `settings.page_dir` that the publisher listed.

Only the files of the manifest (renderers/publish.py) are served, never anything
else that lies in the directory, nor a file from outside it; each with ETag and
Last-Modified, and 304 when the client's copy is current. A sink, not a route:
it answers every path no route took, and every method (405 unless GET or HEAD).

One file is answered from memory whatever the directory holds: this release's
stylesheet, `/style.<hash>.css`, which the sign-up pages the app serves link on
the app's own origin (the page itself may live elsewhere, on S3).
"""

from __future__ import annotations

import os
import re
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

import falcon

from bot.http.errors import NOT_ALLOWED, plain_reply
from renderers.html import stylesheet
from renderers.publish import IMMUTABLE, MANIFEST, content_type, fingerprinted, read_manifest

CACHE_CONTROL = "public, max-age=10"
NOT_FOUND = "Not found\n"

# A path segment of a page file: letters, digits, `_ . -`, not starting with a dot.
# Anything else (`..`, `%2e` left over from double encoding, `\`, `:`, NUL) is a 404.
# PATH_INFO arrives percent-decoded once, and Falcon decodes nothing more.
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\Z")


class Pages:
    """The sink for the page's files."""

    def __init__(self, page_dir: Path) -> None:
        self.root = Path(page_dir).resolve()
        # The manifest's identity (inode, mtime, size) and its names, reread when it changes.
        self._manifest: tuple[tuple[int, int, int], frozenset[str]] | None = None
        sheet = stylesheet()
        self._sheet = ("/" + sheet.path, sheet.text.encode(), f'"{sheet.path}"')

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        """A file of the page, with validators; 304 when the client's copy is current."""
        if req.method not in ("GET", "HEAD"):
            plain_reply(resp, 405, NOT_ALLOWED, [("Allow", "GET, HEAD")])
            return
        if req.path == self._sheet[0]:
            self._stylesheet(req, resp)
            return
        found = self._resolve(req.path)
        if found is None:
            plain_reply(resp, 404, NOT_FOUND)
            return
        try:
            with found.open("rb") as handle:
                stat = os.fstat(handle.fileno())
                body = handle.read()
        except OSError:  # replaced or removed between resolving and reading
            plain_reply(resp, 404, NOT_FOUND)
            return
        etag = f'"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        resp.set_header("ETag", etag)
        resp.set_header("Last-Modified", formatdate(stat.st_mtime, usegmt=True))
        # The stylesheet's name changes with its content: caches may keep it for good.
        resp.set_header("Cache-Control", IMMUTABLE if fingerprinted(found.name) else CACHE_CONTROL)
        resp.set_header("X-Content-Type-Options", "nosniff")
        if _not_modified(req, etag, stat.st_mtime):
            resp.status = falcon.HTTP_304
            return
        resp.content_type = content_type(found.name)
        resp.data = body  # Falcon sets Content-Length, also for HEAD, and sends no body then

    def _stylesheet(self, req: falcon.Request, resp: falcon.Response) -> None:
        """This release's stylesheet: its name is its content's hash, so is its ETag."""
        _, body, etag = self._sheet
        resp.set_header("ETag", etag)
        resp.set_header("Cache-Control", IMMUTABLE)
        resp.set_header("X-Content-Type-Options", "nosniff")
        if _not_modified(req, etag, None):
            resp.status = falcon.HTTP_304
            return
        resp.content_type = content_type(self._sheet[0])
        resp.data = body

    def _resolve(self, path: str) -> Path | None:
        """The file a URL path names inside the page directory, or None."""
        parts = [p for p in path.split("/") if p]
        if not all(_SEGMENT.match(p) for p in parts):
            return None
        candidates: list[list[str]]
        if not parts or path.endswith("/"):
            candidates = [[*parts, "index.html"]]
        elif "." not in parts[-1]:  # /incidents/12 → incidents/12.html
            candidates = [[*parts[:-1], parts[-1] + ".html"], [*parts, "index.html"]]
        else:
            candidates = [parts]
        published = self._published()
        for candidate in candidates:
            if "/".join(candidate) not in published:
                continue  # not a file of the page, whatever else lies in the directory
            try:
                real = self.root.joinpath(*candidate).resolve(strict=True)
            except (OSError, RuntimeError):
                continue
            # resolve() followed any symlink: what it reached must still be inside.
            if real.is_relative_to(self.root) and real.is_file():
                return real
        return None

    def _published(self) -> frozenset[str]:
        """The files the publisher last listed; one stat per request, a read when it changed."""
        try:
            info = os.stat(self.root / MANIFEST)
        except OSError:
            return frozenset()
        key = (info.st_ino, info.st_mtime_ns, info.st_size)
        cached = self._manifest
        if cached is None or cached[0] != key:
            cached = key, read_manifest(self.root)
            self._manifest = cached
        return cached[1]


def _not_modified(req: falcon.Request, etag: str, mtime: float | None) -> bool:
    """RFC 9110: If-None-Match decides when present; else If-Modified-Since."""
    if_none_match = req.get_header("If-None-Match")
    if if_none_match is not None:
        tags = [t.strip() for t in if_none_match.split(",")]
        return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)
    since = req.get_header("If-Modified-Since")
    if not since or mtime is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    return int(mtime) <= when.timestamp()
