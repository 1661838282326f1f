"""Coalesced page publishing: however many changes arrive, render at most once per window.

A burst of 100 commands a second must not cause 100 renders. `request()` only
marks the page stale and returns at once; one background thread publishes. The
first change after a quiet spell is published straight away, and every change
that arrives while a publish runs (or within `window` of its start) is folded
into the next one, so a change is on the page within about window + two renders.
When the page grows slow to render, the pause after a publish grows with it
(twice as long as the publish took), so publishing never takes more than a third
of the process's time from the commands it serves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable

from commands.result import Result

log = logging.getLogger(__name__)

# The shortest time between two publishes' starts. A change waits for the next one,
# so this is most of "the page shows it" when renders are quick (0.2 s made the p99
# about 300 ms); when they are slow, the rest after each (below) decides instead.
DEFAULT_WINDOW = 0.1
# After a publish, rest at least this many times as long as it took.
REST_RATIO = 2.0

# Publisher.publish: bring the page up to date, re-reading at least these incidents.
Publish = Callable[[Collection[int]], object]


class CoalescingPublisher:
    """Runs `publish(dirty)` in a background thread, at most once per `window` seconds.

    `dirty` is every incident number named by the changes it covers, so an
    incremental publisher re-renders exactly the incident pages that changed.
    """

    def __init__(
        self,
        publish: Publish,
        *,
        window: float = DEFAULT_WINDOW,
        rest_ratio: float = REST_RATIO,
        name: str = "statusbot-publisher",
    ) -> None:
        self._publish = publish
        self._rest_ratio = rest_ratio
        self._last_seconds = 0.0  # how long the last publish took
        self._dirty: set[int] = set()
        self._window = window
        self._name = name
        self._cond = threading.Condition()
        self._requested = 0  # bumped by every request()
        self._started = 0  # the request count the running (or last) publish covers
        self._done = 0  # the request count the last finished publish covered
        self._last_start = float("-inf")
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.runs = 0  # publishes so far, for tests and the benchmark

    def start(self) -> CoalescingPublisher:
        """Start the background thread; returns self."""
        with self._cond:
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
        return self

    def attach(self, after_change: list[Callable[[Result], None]]) -> CoalescingPublisher:
        """Request a publish after every change (pass `runtime.after_change`); returns self."""
        after_change.append(self.on_change)
        return self

    def on_change(self, result: Result) -> None:
        """An after-change hook: a publish soon, naming the incidents the change touched."""
        self.request(changed_numbers(result))

    def request(self, dirty: Iterable[int] = ()) -> None:
        """Ask for a publish soon; never blocks on the render."""
        with self._cond:
            self._dirty.update(dirty)
            self._requested += 1
            self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every change requested so far is published; False on timeout."""
        with self._cond:
            target = self._requested
            running = self._thread is not None
            if running:
                return self._cond.wait_for(lambda: self._done >= target, timeout)
        if target > self._done:  # no thread: publish here, for one-shot use and tests
            self._run(target)
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Publish what is pending, then stop the thread."""
        with self._cond:
            thread = self._thread
            self._stopping = True
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            self._thread = None

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._requested > self._started or self._stopping)
                if self._requested == self._started:  # stopping, nothing pending
                    return
                gap = max(self._window, (1 + self._rest_ratio) * self._last_seconds)
                delay = self._last_start + gap - time.monotonic()
                if delay > 0 and not self._stopping:
                    # Let the window fill up; stop() cuts the wait short.
                    self._cond.wait_for(lambda: self._stopping, delay)
                target = self._requested
            self._run(target)

    def _run(self, target: int) -> None:
        with self._cond:
            self._started = max(self._started, target)
            dirty, self._dirty = frozenset(self._dirty), set()
        started = self._last_start = time.monotonic()
        try:
            self._publish(dirty)
        except Exception:
            # The thread must outlive a failed render: the last good page stays up
            # (the publisher writes atomically) and the next change tries again.
            log.exception("publishing the page failed; the previous page stays up")
        finally:
            self._last_seconds = time.monotonic() - started
            log.debug("published %d incident(s) in %.3f s", len(dirty), self._last_seconds)
            with self._cond:
                self.runs += 1
                self._done = max(self._done, target)
                self._cond.notify_all()


def changed_numbers(result: Result) -> set[int]:
    """The incidents and maintenances a change touched."""
    numbers = {n.number for n in result.notices if n.number is not None}
    if result.number is not None:
        numbers.add(result.number)
    return numbers
