"""Keeping to Slack's rate limits before Slack has to say so.

Slack limits chat.postMessage to about one message a second per channel, and
chat.update (Tier 3) to about 50 a minute per workspace; beyond them it answers
HTTP 429 with `Retry-After`. A deliverer that lets the 429s pace it loses a
round trip and the whole `Retry-After` (whole seconds, at least one) every time
it runs ahead. The `Pacer` keeps each method to its limit in its own scope (a
channel for posts, the workspace for edits), and remembers each 429's
`Retry-After` for the method and scope it came from, so a limit in one channel
never holds back another.

A channel's next post is timed from the moment Slack answered the last one
(`answered`), not from when it was sent: Slack counts a post when it arrives,
which is before it answers, so a post sent a full interval after the answer
always arrives a full interval after the last one, however long either took on
the way. No margin is needed for the network's jitter, and none is paid.

One pacer serves one process. Two deliverer processes on the same channels may
together run ahead of Slack; their 429s are then honoured the same way.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

POST = "chat.postMessage"
UPDATE = "chat.update"
WORKSPACE = "*"  # the scope of a limit that counts a whole workspace's calls


@dataclass(frozen=True, slots=True)
class Limits:
    """Slack's documented limits (edits with a margin for the clocks' jitter)."""

    # Seconds from Slack's answer to one post to the next post in that channel.
    post_interval: float = 1.0
    update_per_window: int = 48  # chat.update calls in any `window` seconds, workspace-wide
    window: float = 60.0


SLACK_LIMITS = Limits()
# No pacing at all: only the Retry-After of a 429 holds a method back.
NO_LIMITS = Limits(post_interval=0.0, update_per_window=0)


class NotYet(Exception):
    """The call would exceed a limit for `seconds` more: send it later."""

    def __init__(self, method: str, seconds: float) -> None:
        super().__init__(f"{method}: rate limit, {seconds:.2f}s to go")
        self.method = method
        self.seconds = seconds


class Pacer:
    """When each Slack method may next be called, per channel (posts) or workspace."""

    def __init__(
        self,
        limits: Limits = SLACK_LIMITS,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 1.5,
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.sleep = sleep
        # A call that would wait longer than this is put back for later instead:
        # the thread moves on to channels that are free.
        self.max_wait = max_wait
        self._lock = threading.Lock()
        self._next: dict[tuple[str, str], float] = {}  # (method, scope) → earliest next call
        self._held: dict[tuple[str, str], float] = {}  # (method, scope) → Retry-After's end
        self._updates: deque[float] = deque()

    @staticmethod
    def scope(method: str, channel: str) -> str:
        """Posts are limited per channel; every other method per workspace."""
        return channel if method == POST else WORKSPACE

    def wait(self, method: str, channel: str) -> float:
        """Seconds until `method` may be called in `channel` (0: now)."""
        with self._lock:
            return self._wait(method, channel, self.clock())

    def acquire(self, method: str, channel: str) -> None:
        """Take a slot for one call now, waiting up to `max_wait`; NotYet beyond that."""
        for attempt in range(2):
            with self._lock:
                now = self.clock()
                wait = self._wait(method, channel, now)
                if wait <= 0:
                    self._take(method, channel, now)
                    return
            if attempt or wait > self.max_wait:
                raise NotYet(method, wait)
            self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def answered(self, method: str, channel: str) -> None:
        """Slack has answered a call taken with `acquire`: the next post in this channel
        waits a whole interval from now."""
        if method != POST or not self.limits.post_interval:
            return
        key = (method, channel)
        with self._lock:
            at = self.clock() + self.limits.post_interval
            self._next[key] = max(at, self._next.get(key, at))

    def hold(self, method: str, channel: str, seconds: float) -> None:
        """Slack answered 429: no `method` in this scope for `seconds`."""
        key = (method, self.scope(method, channel))
        with self._lock:
            until = self.clock() + seconds
            self._held[key] = max(until, self._held.get(key, until))

    def held(self, method: str, channel: str) -> float:
        """Seconds left of a 429's Retry-After for `method` in this scope (0: none)."""
        with self._lock:
            until = self._held.get((method, self.scope(method, channel)), 0.0)
            return max(0.0, until - self.clock())

    def _wait(self, method: str, channel: str, now: float) -> float:
        key = (method, self.scope(method, channel))
        wait = max(self._held.get(key, now), self._next.get(key, now)) - now
        if method == UPDATE and self.limits.update_per_window:
            while self._updates and self._updates[0] <= now - self.limits.window:
                self._updates.popleft()
            if len(self._updates) >= self.limits.update_per_window:
                wait = max(wait, self._updates[0] + self.limits.window - now)
        return max(0.0, wait)

    def _take(self, method: str, channel: str, now: float) -> None:
        if method == POST and self.limits.post_interval:
            self._next[(method, channel)] = now + self.limits.post_interval
        elif method == UPDATE and self.limits.update_per_window:
            self._updates.append(now)
