"""A fake Slack Web API on localhost: records every call, answers like Slack, fails on request.

Point a WebClient (or SLACK_API_URL) at `fake.api_url` ("http://127.0.0.1:PORT/api/").
Slash-command `response_url`s can point at `fake.url + "/response/NAME"`; what
is posted there is recorded as method "response_url".

With `limits=SlackLimits()` it also enforces Slack's documented rate limits
(chat.postMessage one a second per channel; chat.update about 50 a minute per
workspace): a call beyond them is answered 429 with a `Retry-After`, as Slack
does, and takes no effect. bench/deliver.py measures delivery against that.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

DEFAULT_LIMIT = 100  # conversations.history's page size when no limit is given


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]
    at: float
    status: int  # the HTTP status the fake answered with
    ok: bool = True  # what the answer's "ok" said (False for an injected Slack error)


@dataclass
class Failure:
    status: int
    retry_after: int | None = None
    error: str | None = None  # an {"ok": false, "error": …} answer with HTTP 200
    lost_answer: bool = False  # the call takes effect, but its answer is the failure
    hang: bool = False  # no answer until `release()` (or stop()): Slack hanging


@dataclass(frozen=True)
class SlackLimits:
    """Slack's documented limits for the methods statusbot's deliverer calls.

    chat.postMessage: one message a second per channel. chat.update (Tier 3):
    `update_per_minute` in any 60 seconds per workspace. Beyond either: HTTP 429
    with `Retry-After` (whole seconds, at least 1) and nothing posted or edited.
    """

    post_interval: float = 1.0  # seconds between two posts in one channel
    update_per_minute: int = 50
    window: float = 60.0


@dataclass
class _Limiter:
    """What the limits have let through so far (monotonic times)."""

    limits: SlackLimits
    last_post: dict[str, float] = field(default_factory=dict)  # channel → last post
    updates: deque[float] = field(default_factory=deque)

    def retry_after(self, method: str, params: dict[str, Any], now: float) -> int | None:
        """None if the call may go now (and count it), else the seconds to wait."""
        if method == "chat.postMessage":
            channel = str(params.get("channel"))
            last = self.last_post.get(channel)
            if last is not None and now - last < self.limits.post_interval:
                return max(1, math.ceil(last + self.limits.post_interval - now))
            self.last_post[channel] = now
        elif method == "chat.update":
            while self.updates and self.updates[0] <= now - self.limits.window:
                self.updates.popleft()
            if len(self.updates) >= self.limits.update_per_minute:
                return max(1, math.ceil(self.updates[0] + self.limits.window - now))
            self.updates.append(now)
        return None


@dataclass(frozen=True)
class Message:
    """A message as the fake keeps it, for conversations.history and .replies."""

    channel: str
    ts: str
    text: str
    thread_ts: str | None
    metadata: dict[str, Any] | None


@dataclass
class FakeSlack:
    """The server's state; thread-safe."""

    usergroups: dict[str, list[str]] = field(default_factory=dict)
    posted: list[Message] = field(default_factory=list)
    # Where apps.connections.open sends a Socket Mode app (tests/fake_socket_mode.py).
    socket_mode_url: str | None = None
    user_zones: dict[str, str] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    limits: SlackLimits | None = None  # Slack's rate limits enforced, when given
    limits_clock: Callable[[], float] = time.monotonic  # the limits' time (a test's clock)
    _limiter: _Limiter | None = None
    _failures: dict[str, deque[Failure]] = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _released: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # -- control --------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def start(self) -> FakeSlack:
        fake = self
        if self.limits is not None and self._limiter is None:
            self._limiter = _Limiter(self.limits)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def fail(
        self,
        method: str,
        *,
        status: int = 500,
        times: int = 1,
        retry_after: int | None = None,
        error: str | None = None,
        lost_answer: bool = False,
    ) -> None:
        """Make the next `times` calls of `method` fail this way (with `lost_answer`, the
        call takes effect first: Slack posted the message, but its answer never came)."""
        with self._lock:
            for _ in range(times):
                self._failures[method].append(Failure(status, retry_after, error, lost_answer))

    def hang(self, method: str, *, times: int = 1) -> None:
        """Make the next `times` calls of `method` get no answer until `release()`; each is
        recorded on arrival, with status 0."""
        with self._lock:
            self._released.clear()
            for _ in range(times):
                self._failures[method].append(Failure(0, hang=True))

    def release(self) -> None:
        """Let hanging calls go (they are then answered normally, too late for the caller)."""
        self._released.set()

    def messages(self, channel: str) -> list[Message]:
        """What a channel holds (posts and thread replies), oldest first."""
        with self._lock:
            return [m for m in self.posted if m.channel == channel]

    def chatter(self, channel: str, count: int, *, thread_ts: str | None = None) -> None:
        """Other people post `count` messages to a channel (or a thread), newest last."""
        with self._lock:
            for n in range(count):
                ts = f"1700000000.{next(self._ts):06d}"
                self.posted.append(Message(channel, ts, f"chatter {n}", thread_ts, None))

    def calls_to(self, method: str, *, ok_only: bool = True) -> list[Call]:
        """Recorded calls of one method (by default only those answered with success)."""
        with self._lock:
            return [c for c in self.calls if c.method == method and (not ok_only or c.ok)]

    def reset(self) -> None:
        """Forget recorded calls, messages, user groups, time zones and pending failures
        (for a server shared by several tests)."""
        with self._lock:
            self.calls.clear()
            self.posted.clear()
            self.usergroups.clear()
            self.user_zones.clear()
            self._failures.clear()
            if self.limits is not None:
                self._limiter = _Limiter(self.limits)
        self.release()

    def counts(self) -> dict[str, int]:
        """Successful calls per method."""
        out: dict[str, int] = defaultdict(int)
        with self._lock:
            for c in self.calls:
                if c.ok:
                    out[c.method] += 1
        return dict(out)

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Wait until `method` has had `count` successful calls; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.calls_to(method)
            if len(found) >= count:
                return found
            time.sleep(0.01)
        raise AssertionError(
            f"expected {count} {method} call(s) within {timeout}s, saw {self.counts()}"
        )

    # -- serving --------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        params = _params(raw, request.headers.get("Content-Type", ""))
        if "?" in request.path:
            params.update({k: v[0] for k, v in parse_qs(request.path.split("?", 1)[1]).items()})
        if path.startswith("/response/"):
            method = "response_url"
            params["_path"] = path
        else:
            method = path.removeprefix("/api/")
        with self._lock:
            failures = self._failures.get(method)
            failure = failures.popleft() if failures else None
            if failure is None and self._limiter is not None:
                wait = self._limiter.retry_after(method, params, self.limits_clock())
                if wait is not None:
                    failure = Failure(429, retry_after=wait)
        if failure is not None and failure.hang:
            self._record(method, params, 0)
            self._released.wait(timeout=60)
            with contextlib.suppress(OSError):  # the caller has long given up
                _send(request, 200, self._answer(method, params))
            return
        if failure is not None and failure.lost_answer:
            self._answer(method, params)  # it happened; the answer is what gets lost
        if failure is not None and failure.error is None:
            self._record(method, params, failure.status)
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
            body = {"ok": False, "error": "ratelimited" if failure.status == 429 else "fatal_error"}
            _send(request, failure.status, body, headers)
            return
        if failure is not None:
            self._record(method, params, 200, ok=False)
            _send(request, 200, {"ok": False, "error": failure.error})
            return
        self._record(method, params, 200)
        _send(request, 200, self._answer(method, params))

    def _record(self, method: str, params: dict[str, Any], status: int, *, ok: bool = True) -> None:
        with self._lock:
            self.calls.append(Call(method, params, time.monotonic(), status, ok and status == 200))

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            with self._lock:
                ts = params.get("ts") or f"1700000000.{next(self._ts):06d}"
                if method == "chat.postMessage":
                    self.posted.append(
                        Message(
                            channel=str(params.get("channel")),
                            ts=ts,
                            text=str(params.get("text")),
                            thread_ts=params.get("thread_ts"),
                            metadata=_maybe_json(params.get("metadata")) or None,
                        )
                    )
            return {
                "ok": True,
                "channel": params.get("channel"),
                "ts": ts,
                "message_ts": ts,
                "message": {"text": params.get("text"), "ts": ts},
            }
        if method.startswith("views."):
            return {"ok": True, "view": {"id": "V0FAKE", **_maybe_json(params.get("view"))}}
        if method == "chat.getPermalink":
            channel, ts = str(params.get("channel")), str(params.get("message_ts"))
            return {
                "ok": True,
                "channel": channel,
                "permalink": f"https://example.slack.com/archives/{channel}/p{ts.replace('.', '')}",
            }
        if method == "usergroups.users.list":
            return {"ok": True, "users": self.usergroups.get(str(params.get("usergroup")), [])}
        if method == "users.info":
            user = str(params.get("user"))
            zone = self.user_zones.get(user, "UTC")
            return {"ok": True, "user": {"id": user, "tz": zone, "name": user.lower()}}
        if method in ("conversations.history", "conversations.replies"):
            found = self._history(method, params)
            # Slack answers a page of at most `limit` messages (100 unless asked), and a
            # cursor for the next page while there is more.
            limit = int(params.get("limit") or DEFAULT_LIMIT)
            start = int(str(params.get("cursor") or "page:0").removeprefix("page:"))
            answer: dict[str, Any] = {
                "ok": True,
                "messages": found[start : start + limit],
                "has_more": len(found) > start + limit,
            }
            if answer["has_more"]:
                answer["response_metadata"] = {"next_cursor": f"page:{start + limit}"}
            return answer
        if method == "apps.connections.open":
            if self.socket_mode_url is None:
                return {"ok": False, "error": "not_allowed_token_type"}
            return {"ok": True, "url": self.socket_mode_url}
        if method == "auth.test":
            return {
                "ok": True,
                "user_id": "U0BOT",
                "team_id": "T0TEAM",
                "bot_id": "B0BOT",
                "url": "https://example.slack.com/",
            }
        return {"ok": True}

    def _history(self, method: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """A channel's top-level messages newest first, or a thread oldest first, as Slack
        lists them; metadata only when asked for (`include_all_metadata`)."""
        channel, thread = str(params.get("channel")), params.get("ts")
        oldest = float(params.get("oldest") or 0)
        with self._lock:
            if method == "conversations.history":
                found = [m for m in self.posted if m.channel == channel and m.thread_ts is None]
                found = [m for m in reversed(found) if float(m.ts) > oldest]
            else:  # the thread's parent first, then its replies after `oldest`
                found = [
                    m
                    for m in self.posted
                    if m.channel == channel
                    and (m.ts == thread or (m.thread_ts == thread and float(m.ts) > oldest))
                ]
        metadata = str(params.get("include_all_metadata")).lower() in ("1", "true")
        out = []
        for m in found:
            item: dict[str, Any] = {"type": "message", "ts": m.ts, "text": m.text}
            if m.thread_ts:
                item["thread_ts"] = m.thread_ts
            if metadata and m.metadata:
                item["metadata"] = m.metadata
            out.append(item)
        return out


def _params(raw: bytes, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    text = raw.decode("utf-8")
    if "json" in content_type:
        loaded = json.loads(text)
        return loaded if isinstance(loaded, dict) else {"_body": loaded}
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


def _maybe_json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            loaded = json.loads(value)
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {}


def _send(
    request: BaseHTTPRequestHandler,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> None:
    data = json.dumps(body).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json; charset=utf-8")
    request.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.end_headers()
    request.wfile.write(data)
