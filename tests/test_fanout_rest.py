"""A fan-out pass that reached nobody lets the next wait: pokes under load fold into
a few passes a second instead of one every `min_gap`."""

from __future__ import annotations

import time

from bot.delivery_worker import DeliveryWorker
from bot.notify.fanout import FanOut
from bot.runtime import Runtime
from storage import subscribers as store
from tests.conftest import FakeClock
from tests.test_slack_delivery import CountingDrain, poked


class BusyDrain(CountingDrain):
    """A deliverer that does one entry a pass and says whether that reached nobody."""

    def __init__(self, quiet: bool) -> None:
        super().__init__(held=False)
        self._quiet = quiet

    def deliver_pending(self, limit: int = 50) -> int:
        super().deliver_pending(limit)
        return 1

    def quiet(self) -> bool:
        return self._quiet


def test_pokes_after_passes_that_reached_nobody_wait_for_the_quiet_rest() -> None:
    drain = BusyDrain(quiet=True)
    worker = DeliveryWorker(drain, interval=60, rest_ratio=0, min_gap=0.01, quiet_rest=0.3)
    assert poked(drain, worker) <= 1 + 0.5 / 0.3 + 1


def test_pokes_after_passes_that_told_someone_start_one_every_min_gap() -> None:
    drain = BusyDrain(quiet=False)
    worker = DeliveryWorker(drain, interval=60, rest_ratio=0, min_gap=0.01, quiet_rest=0.3)
    assert poked(drain, worker) > 1 + 0.5 / 0.3 + 1


def ok(rt: Runtime, line: str) -> None:
    result = rt.run_line(line, user="U0IC")
    assert result.ok, result.reply


def test_the_fanout_is_quiet_only_after_a_pass_with_nobody_subscribed(
    runtime: Runtime, clock: FakeClock
) -> None:
    fanout = FanOut(runtime.factory, clock=clock)
    assert not fanout.quiet()
    ok(runtime, "/incident open Errors 1")
    assert fanout.deliver_pending() == 1
    assert fanout.quiet(), "marked done, told nobody"
    with runtime.factory.begin() as session:
        store.add(
            session,
            kind=store.EMAIL,
            email="a@example.com",
            endpoint=None,
            components=[],
            source="cli",
            now=clock(),
            confirmed=True,
        )
    ok(runtime, "/incident open Errors 2")
    assert fanout.deliver_pending() == 1
    assert not fanout.quiet(), "a subscriber was told"


def test_changes_poke_the_fanout_and_not_the_senders(runtime: Runtime) -> None:
    """Under a burst of changes with nobody subscribed, the email and webhook senders
    look at their lines on their own schedule only, not once per change."""
    from sqlalchemy import event

    import bot.notify
    from bot.notify.webhook import webhook_sender

    looks: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, params: object, *_: object) -> None:
        if "FROM outbox" in statement and "webhook" in str(params):
            looks.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", seen)
    stoppers = bot.notify.start(runtime, [webhook_sender(runtime)])
    try:
        deadline = time.monotonic() + 10
        while not looks:  # the sender's first look, at its start
            assert time.monotonic() < deadline, "the sender never looked"
            time.sleep(0.01)
        ok(runtime, "/component add API")
        before, started = len(looks), time.monotonic()
        for n in range(30):
            ok(runtime, f"/component set API {'operational' if n % 2 else 'major'}")
            time.sleep(0.02)
        # 30 changes: only the sender's own looks, one every 2 s (15 passes before).
        own = 1 + (time.monotonic() - started) // 2.0
        assert len(looks) - before <= own, (len(looks) - before, own)
    finally:
        for stop in stoppers:
            stop()
        event.remove(runtime.engine, "before_cursor_execute", seen)
