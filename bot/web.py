"""The one WSGI app `statusbot serve` runs: Slack, the public page, /healthz and the metrics API.

Plain WSGI, no framework: four routes don't need one, and each is easier to
audit as a few lines of its own.

- `POST /slack/events`: bolt's WSGI handler, behind the gate in bot/slack/ingress.py
  (signature, timestamp, body shape, replays).
- `GET /healthz`: `SELECT 1`; 200 `{"ok": true}` or 503 (GET and HEAD only).
- `POST /api/metrics/NAME`: points for a metric, with `Authorization: Bearer
  STATUSBOT_API_TOKEN`; 404 when no token is set.
- everything else: the static page in `settings.page_dir`, with ETag and
  Last-Modified: only the files the publisher listed in its manifest, never
  anything else that lies in the directory, nor a file from outside it.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot.runtime import Runtime
from bot.slack.ingress import SlackIngress
from commands import dispatch
from commands.metrics import VALUE_RANGE, push_points
from commands.when import OUT_OF_RANGE, utc_in_years
from renderers.publish import MANIFEST, content_type, read_manifest

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
METRICS_PREFIX = "/api/metrics/"
API_ACTOR = "api"  # who the audit log names for points sent to the metrics API
CACHE_CONTROL = "public, max-age=10"
MAX_BODY = 1024 * 1024
MAX_POINTS = 10_000

# A path segment of a page file: letters, digits, `_ . -`, not starting with a dot.
# Anything else (`..`, `%2e` left over from double encoding, `\`, `:`, NUL) is a 404.
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\Z")

Headers = list[tuple[str, str]]
Reply = tuple[str, Headers, bytes]


class WebApp:
    """The WSGI callable. `slack` is bolt's handler, or None when Slack is off."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        slack: WSGIApplication | None = None,
        on_metrics: Callable[[], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.slack = slack
        self.on_metrics = on_metrics
        self.root = Path(runtime.settings.page_dir).resolve()
        # The manifest's identity (inode, mtime, size) and its names, reread when it changes.
        self._manifest: tuple[tuple[int, int, int], frozenset[str]] | None = None
        self.slack_ingress = SlackIngress(runtime)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path == SLACK_PATH and self.slack is not None and method == "POST":
            return self.slack_events(self.slack, environ, start_response)
        if path == SLACK_PATH and self.slack is not None:
            reply = _plain(405, "Method not allowed\n", [("Allow", "POST")])
        elif path == SLACK_PATH:
            reply = _json(
                404,
                {
                    "ok": False,
                    "error": "slack_off",
                    "message": "Slack is off: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET.",
                },
            )
        elif path == "/healthz":
            reply = self.healthz(method)
        elif path.startswith(METRICS_PREFIX):
            reply = self.push_metric(environ, method, path[len(METRICS_PREFIX) :])
        elif method in ("GET", "HEAD"):
            reply = self.page(environ, path)
        else:
            reply = _plain(405, "Method not allowed\n", [("Allow", "GET, HEAD")])
        status, headers, body = reply
        start_response(status, headers)
        return [b""] if method == "HEAD" else [body]

    # --- /slack/events --------------------------------------------------------------------

    def slack_events(
        self, bolt: WSGIApplication, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """A Slack request: to bolt if the gate admits it, else the gate's answer."""
        raw = _read_body(environ)
        if raw is None:
            status, headers, body = _error(
                413, "too_large", f"Send at most {MAX_BODY:,} bytes per request."
            )
        else:
            verdict = self.slack_ingress.admit(environ, raw)
            if verdict is None:
                return bolt(environ, start_response)
            if verdict.payload is None:
                status, headers, body = _plain(verdict.status, "")
            else:
                status, headers, body = _json(verdict.status, verdict.payload)
        start_response(status, headers)
        return [body]

    # --- /healthz ------------------------------------------------------------------------

    def healthz(self, method: str = "GET") -> Reply:
        """200 when the database answers `SELECT 1`, else 503; 405 unless GET or HEAD."""
        if method not in ("GET", "HEAD"):
            return _plain(405, "Method not allowed: use GET /healthz\n", [("Allow", "GET, HEAD")])
        try:
            with self.runtime.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as error:
            log.warning("health check: the database did not answer: %s", error)
            return _json(503, {"ok": False, "error": "database unavailable"}, cache="no-store")
        return _json(200, {"ok": True}, cache="no-store")

    # --- the public page -----------------------------------------------------------------

    def page(self, environ: WSGIEnvironment, path: str) -> Reply:
        """A file of the page, with validators; 304 when the client's copy is current."""
        found = self._resolve(path)
        if found is None:
            return _plain(404, "Not found\n")
        try:
            with found.open("rb") as handle:
                stat = os.fstat(handle.fileno())
                body = handle.read()
        except OSError:  # replaced or removed between resolving and reading
            return _plain(404, "Not found\n")
        etag = f'"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        headers: Headers = [
            ("ETag", etag),
            ("Last-Modified", formatdate(stat.st_mtime, usegmt=True)),
            ("Cache-Control", CACHE_CONTROL),
            ("X-Content-Type-Options", "nosniff"),
        ]
        if _not_modified(environ, etag, stat.st_mtime):
            return "304 Not Modified", headers, b""
        headers += [("Content-Type", content_type(found.name)), ("Content-Length", str(len(body)))]
        return "200 OK", headers, body

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

    # --- the metrics API -----------------------------------------------------------------

    def push_metric(self, environ: WSGIEnvironment, method: str, raw_name: str) -> Reply:
        """Add points to a metric: `{"value": 12.3, "at": ISO}` or `{"points": [...]}`."""
        token = self.runtime.settings.api_token
        if not token:
            return _error(404, "not_found", "The metrics API is off: set STATUSBOT_API_TOKEN.")
        if not _authorised(environ.get("HTTP_AUTHORIZATION", ""), token):
            status, headers, body = _error(
                401,
                "unauthorized",
                "Send the API token as 'Authorization: Bearer STATUSBOT_API_TOKEN'.",
            )
            return status, [*headers, ("WWW-Authenticate", 'Bearer realm="statusbot"')], body
        if method != "POST":
            status, headers, body = _error(405, "method_not_allowed", "POST points here.")
            return status, [*headers, ("Allow", "POST")], body
        name = _path_text(raw_name).strip("/")
        if not name or "/" in name:
            return _error(404, "unknown_metric", "Name one metric: /api/metrics/NAME.")
        raw = _read_body(environ)
        if raw is None:
            return _error(413, "too_large", f"Send at most {MAX_BODY:,} bytes per request.")
        now = self.runtime.clock()
        try:
            points = parse_points(raw, now=now)
        except ValueError as error:
            return _error(400, "bad_request", str(error))
        ctx = self.runtime.context(API_ACTOR)
        result = dispatch.run(
            self.runtime.factory,
            ctx,
            lambda session: push_points(session, ctx, name=name, points=points),
            what="the metrics API",
            note={"via": "metrics API"},
            usage=False,
        )
        if not result.ok:
            if result.field == "metric":
                return _error(404, "unknown_metric", result.reply)
            return _error(400, "bad_request", result.reply)
        if self.on_metrics is not None:
            self.on_metrics()  # the chart changed: republish
        return _json(
            200,
            {"ok": True, "metric": name, "added": len(points), "message": result.reply},
            cache="no-store",
        )


def parse_points(raw: bytes, *, now: datetime) -> list[tuple[datetime, float]]:
    """The points of a metrics request body; ValueError says what is wrong, for a 400."""
    try:
        data = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"The body is not JSON: {error}.") from error
    except RecursionError as error:  # the decoder recurses once per level of nesting
        raise ValueError(
            'The body is nested too deeply: send {"value": …} or {"points": [{"value": …}]}.'
        ) from error
    if not isinstance(data, dict):
        raise ValueError('Send a JSON object: {"value": 12.3, "at": "2026-06-10T10:00:00Z"}.')
    if "points" in data:
        items = data["points"]
        if not isinstance(items, list) or not items:
            raise ValueError('"points" must be a non-empty list of {"value": …, "at": …}.')
        if len(items) > MAX_POINTS:
            raise ValueError(f"Send at most {MAX_POINTS:,} points per request.")
        return [_point(item, now, where=f"points[{n}]") for n, item in enumerate(items)]
    return [_point(data, now, where="the body")]


def _point(item: object, now: datetime, *, where: str) -> tuple[datetime, float]:
    if not isinstance(item, dict):
        raise ValueError(f'{where} must be an object: {{"value": 12.3, "at": "…"}}.')
    value = item.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f'{where}: "value" must be a number.')
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits has no float
        raise ValueError(f'{where}: "value" is out of range: {VALUE_RANGE}.') from None
    at_text = item.get("at")
    if at_text is None:
        return now, number
    if not isinstance(at_text, str):
        raise ValueError(f'{where}: "at" must be an ISO 8601 time, e.g. 2026-06-10T10:00:00Z.')
    try:
        at = datetime.fromisoformat(at_text)
    except ValueError as error:
        raise ValueError(
            f'{where}: "at" {at_text!r} is not an ISO 8601 time, e.g. 2026-06-10T10:00:00Z.'
        ) from error
    if at.tzinfo is None:
        raise ValueError(f'{where}: "at" {at_text!r} has no UTC offset; add one, e.g. Z or +10:00.')
    utc = utc_in_years(at)
    if utc is None:
        raise ValueError(f'{where}: "at" ' + OUT_OF_RANGE.format(said=at_text))
    # Whether it is finite, in range and not in the future is the use case's to check.
    return utc, number


# --- small helpers ---------------------------------------------------------------------


def _authorised(header: str, token: str) -> bool:
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _path_text(raw: str) -> str:
    """PATH_INFO arrives as latin-1-decoded bytes (PEP 3333); names may be UTF-8."""
    try:
        return unquote(raw.encode("latin-1").decode("utf-8"))
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def _read_body(environ: WSGIEnvironment) -> bytes | None:
    """The request body, or None when it is larger than MAX_BODY."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length_text = environ.get("CONTENT_LENGTH") or ""
    if length_text.isdigit():
        length = int(length_text)
        if length > MAX_BODY:
            return None
        return bytes(stream.read(length))
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        data = bytes(stream.read(MAX_BODY + 1))
        return None if len(data) > MAX_BODY else data
    return b""


def _not_modified(environ: WSGIEnvironment, etag: str, mtime: float) -> bool:
    """RFC 9110: If-None-Match decides when present; else If-Modified-Since."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        tags = [t.strip() for t in if_none_match.split(",")]
        return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)
    since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if not since:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    return int(mtime) <= when.timestamp()


def _json(status: int, payload: dict[str, Any], *, cache: str = "no-store") -> Reply:
    body = json.dumps(payload).encode()
    headers: Headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", cache),
    ]
    return _status(status), headers, body


def _error(status: int, code: str, message: str) -> Reply:
    return _json(status, {"ok": False, "error": code, "message": message})


def _plain(status: int, message: str, extra: Sequence[tuple[str, str]] = ()) -> Reply:
    body = message.encode()
    headers: Headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *extra,
    ]
    return _status(status), headers, body


def _status(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"
