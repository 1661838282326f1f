"""The scheduler: maintenance windows that run themselves, reminders, the midnight render.

`statusbot clock` runs it alone (the Procfile's `clock`); `statusbot serve` runs
it in-process unless STATUSBOT_SCHEDULER=off. Every job goes through the same
use cases as a person's command and is safe to run twice or in two processes:
the work is found by a query, then each item is locked, re-checked and done in
a transaction of its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.orm import Session

from bot.runtime import Runtime
from commands import clockwork
from commands.context import Context
from commands.result import Result
from storage import outbox, ratelimits, schedule
from storage.db import transaction

log = logging.getLogger(__name__)

# How often the clock looks for due work: transitions happen within this of their time.
TICK_SECONDS = 1.0
# Delivered Slack notifications are kept this long (what was sent, and when), then purged.
OUTBOX_KEEP = timedelta(days=30)
RATE_LIMITS_KEEP = timedelta(days=1)


@dataclass
class TickReport:
    """What one tick did, by job."""

    started: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    noticed: list[int] = field(default_factory=list)
    nudged: list[int] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.started or self.completed or self.noticed or self.nudged)


class Clockwork:
    """The jobs, runnable by hand (tests, with an injected clock) or by APScheduler."""

    def __init__(self, runtime: Runtime, *, republish: Callable[[], None] | None = None) -> None:
        self.runtime = runtime
        self.republish = republish
        self._lock = threading.Lock()  # one tick at a time in this process

    def tick(self) -> TickReport:
        """Do everything that is due now."""
        with self._lock:
            now = self.runtime.clock()
            settings = self.runtime.settings
            ctx = clockwork.clock_context(self.runtime.context(clockwork.CLOCK_ACTOR), now)
            report = TickReport()
            with transaction(self.runtime.factory) as session:
                starts = schedule.due_to_start(session, now=now)
                completes = schedule.due_to_complete(session, now=now)
                notices = schedule.due_for_notice(
                    session, now=now, notice=settings.maintenance_notice
                )
                quiet = schedule.quiet_incidents(
                    session,
                    now=now,
                    stale_after=settings.stale_after,
                    max_nudges=clockwork.MAX_NUDGES,
                )
            # A window that passed entirely while the clock was down starts, then completes.
            for number in starts:
                if self._each(ctx, number, clockwork.start_if_due):
                    report.started.append(number)
            for number in sorted(set(completes) | set(report.started)):
                if self._each(ctx, number, clockwork.complete_if_due):
                    report.completed.append(number)
            for number in notices:
                if self._each(ctx, number, clockwork.send_notice):
                    report.noticed.append(number)
            for number in quiet:
                if self._each(
                    ctx,
                    number,
                    lambda s, c, n: clockwork.nudge(s, c, n, stale_after=settings.stale_after),
                ):
                    report.nudged.append(number)
            if report.anything:
                log.info("clock: %s", report)
            return report

    def _each(
        self, ctx: Context, number: int, job: Callable[[Session, Context, int], Result]
    ) -> bool:
        try:
            with transaction(self.runtime.factory) as session:
                result = job(session, ctx, number)
        except Exception:
            # One broken item must not stop the others, nor the clock: log it and
            # try again on the next tick.
            log.exception("clock job %s failed for #%s", job.__name__, number)
            return False
        if result.changed:
            self.runtime.notify_changed(result)
        return result.changed

    def midnight(self) -> None:
        """Re-render at local midnight so the 15-day list and the uptime bars move on;
        forget notifications delivered more than OUTBOX_KEEP ago, and old rate limits."""
        if self.republish is not None:
            self.republish()
        else:
            self.runtime.notify_changed(Result(reply="a new day", changed=True))
        now = self.runtime.clock()
        before = now - OUTBOX_KEEP
        try:
            with transaction(self.runtime.factory) as session:
                purged = outbox.purge_delivered(session, before=before)
                # Sign-up rate-limit windows last minutes; a day-old count is no use.
                ratelimits.forget_expired(session, before=now - RATE_LIMITS_KEEP)
        except Exception:
            log.exception("clock: purging delivered notifications failed; trying again tomorrow")
            return
        if purged:
            log.info("clock: purged %d notification(s) delivered before %s", purged, before)


def make_scheduler(clock: Clockwork, *, blocking: bool) -> BaseScheduler:
    """An APScheduler with the tick every second and the render at local midnight."""
    tz = clock.runtime.settings.tz
    scheduler: BaseScheduler = (
        BlockingScheduler(timezone=tz) if blocking else BackgroundScheduler(timezone=tz)
    )
    scheduler.add_job(
        clock.tick,
        "interval",
        seconds=TICK_SECONDS,
        id="tick",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )
    scheduler.add_job(
        clock.midnight,
        "cron",
        hour=0,
        minute=0,
        second=1,
        id="midnight",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
    return scheduler


def start_in_background(
    runtime: Runtime, *, republish: Callable[[], None] | None = None
) -> BaseScheduler:
    """Run the scheduler in this process's background (what `serve` does)."""
    clock = Clockwork(runtime, republish=republish)
    clock.tick()  # catch up at once after downtime
    scheduler = make_scheduler(clock, blocking=False)
    scheduler.start()
    log.info("scheduler running in-process (STATUSBOT_SCHEDULER=off to leave it to `clock`)")
    return scheduler


def scheduler_hook(runtime: Runtime) -> Callable[[], object]:
    """`serve`'s on_start hook: the scheduler in the background process; its stopper."""
    scheduler = start_in_background(runtime)
    return lambda: scheduler.shutdown(wait=False)


def run_clock(runtime: Runtime, *, republish: Callable[[], None] | None = None) -> int:
    """`statusbot clock`: the scheduler alone, until interrupted."""
    clock = Clockwork(runtime, republish=republish)
    report = clock.tick()
    log.info("clock started; caught up: %s", report)
    scheduler = make_scheduler(clock, blocking=True)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("clock stopped")
    return 0
