"""The outbox's delivery loop: a thread that drains one deliverer when poked.

Every deliverer (Slack's in bot/slack/delivery.py, the subscribers' fan-out and
senders in bot/notify/) runs in one of these, poked when there may be something for
it (Slack's and the fan-out after every change, `Runtime.after_change`; the senders
by the fan-out) and every few seconds otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)


class Drains(Protocol):
    """What a DeliveryWorker runs: the Slack deliverer, or bot/notify's for subscribers."""

    def deliver_pending(self, limit: int = ...) -> int: ...


@runtime_checkable
class Quiet(Protocol):
    """A deliverer that can tell its last pass's work reached nobody (the fan-out, when
    nobody is subscribed): whoever it was for is not waiting on the next."""

    def quiet(self) -> bool: ...


class DeliveryWorker:
    """A background thread that delivers when poked and every few seconds otherwise."""

    def __init__(
        self,
        deliverer: Drains,
        *,
        interval: float = 2.0,
        batch: int = 50,
        rest_ratio: float = 1.0,
        name: str = "slack-delivery",
        next_wake: Callable[[], float | None] | None = None,
        held_rest: float = 0.1,
        min_gap: float = 0.05,
        quiet_rest: float = 0.5,
    ) -> None:
        self.deliverer = deliverer
        self.name = name
        self.interval = interval
        self.batch = batch
        # After a pass that sent something, rest this many times as long as it took:
        # a burst of announcements then takes at most half a core, and the acks
        # (which share the machine) keep theirs. Slack paces a channel to about a
        # message a second anyway, so this never slows an ordinary day.
        self.rest_ratio = rest_ratio
        # Seconds until something held back (a channel's turn, a Retry-After) may go:
        # the worker wakes then instead of after the whole interval.
        self.next_wake = next_wake
        # After a pass that sent nothing because all that was due was held back, wait
        # this long before a poke may start another (at most 1/held_rest fruitless
        # passes a second while a busy channel works through its queue).
        self.held_rest = held_rest
        # The shortest time between the starts of two passes that pokes started.
        self.min_gap = min_gap
        # After a pass whose work reached nobody (the deliverer's `quiet()`), the shortest
        # time before a poke may start another: its entries only need marking done, so a
        # few passes a second do what a pass every `min_gap` did.
        self.quiet_rest = quiet_rest
        self._quiet = deliverer.quiet if isinstance(deliverer, Quiet) else None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DeliveryWorker:
        """Start the thread; it drains what is pending at once (a restart resumes)."""
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def poke(self, *_: object) -> None:
        """Deliver soon: there is something new (fits `Runtime.after_change`)."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the entry in hand, then stop and join the thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        close = getattr(self.deliverer, "close", None)
        if close is not None:
            close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            delivered = 0
            started = time.monotonic()
            try:
                delivered = self.deliverer.deliver_pending(self.batch)
            except Exception:
                # The database may be away for a moment; the thread must outlive that.
                log.exception("%s pass failed; trying again shortly", self.name)
            if delivered:
                self._stopping.wait(self.rest_ratio * (time.monotonic() - started))
            if delivered >= self.batch:
                continue  # more may be waiting
            wait = self.interval
            soon = self.next_wake() if self.next_wake is not None else None
            # Under load every change pokes: passes start at most every `min_gap`,
            # each taking all that the pokes in between brought.
            rest = self.min_gap - (time.monotonic() - started)
            if delivered and self._quiet is not None and self._quiet():
                rest = max(rest, self.quiet_rest - (time.monotonic() - started))
            if soon is not None:
                wait = min(wait, soon)
                if not delivered:
                    # Everything due waits for its channel's turn. What is added now
                    # most likely joins those same queues, so rather than a pass (a
                    # query over the backlog) on every poke, look again after a rest.
                    rest = max(rest, self.held_rest)
            rest = min(wait, rest)
            if rest > 0:
                self._stopping.wait(rest)
                wait -= rest
            self._wake.wait(wait)
            self._wake.clear()
