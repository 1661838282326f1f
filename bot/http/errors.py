"""What every route answers the same way: JSON and plain replies, the body limit, errors.

Falcon's own error serialisation is replaced: an HTTPError (a bad header, a body
too large, a method a route doesn't take) is answered in the shapes below, and
any other exception is logged with its traceback and answered with a plain 500
that says nothing about the code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import falcon

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
TOO_LARGE = f"Send at most {MAX_BODY:,} bytes per request."
NOT_ALLOWED = "Method not allowed\n"
INTERNAL = "Internal server error\n"


def json_reply(
    resp: falcon.Response, status: int, payload: dict[str, Any], *, cache: str = "no-store"
) -> None:
    """A JSON body; the cache header too, since the page's files are the only cached ones."""
    resp.status = status_line(status)
    resp.content_type = "application/json"
    resp.data = json.dumps(payload).encode()
    resp.cache_control = [cache]


def error_reply(resp: falcon.Response, status: int, code: str, message: str) -> None:
    """`{"ok": false, "error": code, "message": message}`."""
    json_reply(resp, status, {"ok": False, "error": code, "message": message})


def plain_reply(
    resp: falcon.Response, status: int, message: str, extra: Sequence[tuple[str, str]] = ()
) -> None:
    """A plain-text body, and any extra headers."""
    resp.status = status_line(status)
    resp.content_type = "text/plain; charset=utf-8"
    resp.data = message.encode()
    for name, value in extra:
        resp.set_header(name, value)


def status_line(code: int) -> str:
    """`404 Not Found` for 404."""
    return f"{code} {HTTPStatus(code).phrase}"


class TooLarge(Exception):
    """The request body is larger than MAX_BODY."""


def read_body(req: falcon.Request, *, limit: int = MAX_BODY) -> bytes:
    """The request body; TooLarge when it would pass `limit` (refused on its
    Content-Length before a byte is read)."""
    length = req.content_length
    if length is not None:
        if length > limit:
            raise TooLarge
        return bytes(req.bounded_stream.read())
    if "chunked" in (req.get_header("Transfer-Encoding") or "").lower():
        # The server has dechunked it; bounded_stream knows no length, so read the
        # stream itself, one byte past the limit to tell "too large" apart.
        data = bytes(req.stream.read(limit + 1))
        if len(data) > limit:
            raise TooLarge
        return data
    return b""


class Refuse:
    """A route that answers no OPTIONS (no CORS here): 405 with the route's Allow."""

    allow: tuple[str, ...] = ()

    def on_options(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        """405, as for any method the route does not take."""
        raise falcon.HTTPMethodNotAllowed(list(self.allow))


def install(app: falcon.App[Any, Any], *, refusals: dict[str, str]) -> None:
    """Falcon's errors in our shapes; `refusals` is the 405 text per route template."""

    def not_allowed(
        req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
    ) -> None:
        assert isinstance(ex, falcon.HTTPMethodNotAllowed)
        allowed = dict(ex.headers or {}).get("Allow", "")
        # Falcon lists OPTIONS for every resource; Refuse answers it 405.
        allow = ", ".join(m.strip() for m in allowed.split(",") if m.strip() != "OPTIONS")
        message = refusals.get(req.uri_template or "", NOT_ALLOWED)
        plain_reply(resp, 405, message, [("Allow", allow)])

    def too_large(
        req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
    ) -> None:
        error_reply(resp, 413, "too_large", TOO_LARGE)

    def http_error(
        req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
    ) -> None:
        assert isinstance(ex, falcon.HTTPError)
        code = ex.status_code
        text = ex.description or ex.title or HTTPStatus(code).phrase
        error_reply(resp, code, HTTPStatus(code).phrase.lower().replace(" ", "_"), text)

    def unexpected(
        req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
    ) -> None:
        log.error("%s %s failed", req.method, _escaped(req.path), exc_info=ex)
        plain_reply(resp, 500, INTERNAL)

    # Falcon picks the most specific handler for an exception's class.
    app.add_error_handler(Exception, unexpected)
    app.add_error_handler(falcon.HTTPError, http_error)
    app.add_error_handler(falcon.HTTPMethodNotAllowed, not_allowed)
    app.add_error_handler(TooLarge, too_large)


def _escaped(text: str) -> str:
    """A path fit for one log line: no newline or control character can forge another."""
    return text.encode("unicode_escape").decode("ascii")
