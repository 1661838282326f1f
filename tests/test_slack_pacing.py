"""Delivery under Slack's rate limits: paced per channel, in parallel, edits coalesced.

A fake Slack that enforces Slack's documented limits (tests/fake_slack.py's
`SlackLimits`) answers 429 with Retry-After beyond them. In-process tests share
one fake clock between the deliverer, its pacer and the fake's limits, so
nothing waits for real; the two-process test runs in real time.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bot.runtime import Runtime
from bot.settings import Settings
from bot.slack.delivery import THREADS, Deliverer
from bot.slack.gateway import SlackGateway
from bot.slack.pacing import NO_LIMITS, POST, UPDATE, Limits, NotYet, Pacer
from tests.conftest import FakeClock
from tests.fake_slack import Call, FakeSlack, SlackLimits
from tests.test_slack_delivery import PAGE, pending, run, shown

ROOT = Path(__file__).resolve().parent.parent
CHANNELS = ("C1", "C2", "C3")


def seconds(clock: FakeClock) -> float:
    return clock.now.timestamp()


@pytest.fixture
def limited(clock: FakeClock) -> Iterator[FakeSlack]:
    """A fake Slack enforcing Slack's limits on the test's clock."""
    server = FakeSlack(limits=SlackLimits(), limits_clock=lambda: seconds(clock)).start()
    yield server
    server.stop()


@pytest.fixture
def rt(engine: Engine, settings: Settings, clock: FakeClock) -> Runtime:
    return Runtime(replace(settings, notify_channels=CHANNELS), engine=engine, clock=clock)


def deliverer(rt: Runtime, fake: FakeSlack, clock: FakeClock, *, paced: bool) -> Deliverer:
    pacer = Pacer(clock=lambda: seconds(clock), sleep=lambda s: None) if paced else None
    return Deliverer(
        rt.factory,
        SlackGateway("xoxb-test", base_url=fake.api_url),
        page_url=PAGE,
        tz=rt.settings.tz,
        clock=clock,
        jitter=lambda: 1.0,
        pacer=pacer,
        threads=THREADS if paced else 1,
    )


def drain(d: Deliverer, rt: Runtime, clock: FakeClock, *, step: float) -> None:
    """Deliver until nothing is pending, the clock moving `step` seconds between passes."""
    for _ in range(200):
        d.deliver_pending()
        if pending(rt) == 0:
            return
        clock.advance(seconds=step)


def posts(fake: FakeSlack, channel: str) -> list[Call]:
    return [c for c in fake.calls_to("chat.postMessage") if c.params["channel"] == channel]


def edits(fake: FakeSlack, channel: str) -> list[Call]:
    return [c for c in fake.calls_to("chat.update") if c.params["channel"] == channel]


def assert_once_in_order(fake: FakeSlack, words: list[str]) -> None:
    """Each channel: one announcement, then one reply per update, in order, nothing twice."""
    for channel in CHANNELS:
        top = [c for c in posts(fake, channel) if "thread_ts" not in c.params]
        thread = [shown(c) for c in posts(fake, channel) if "thread_ts" in c.params]
        assert len(top) == 1, channel
        assert len(thread) == len(words), channel
        assert [w for text in thread for w in words if w in text] == words, channel
        assert {m.thread_ts for m in fake.messages(channel) if m.thread_ts} == {
            announcement(fake, channel)
        }


def announcement(fake: FakeSlack, channel: str) -> str:
    """The ts of the channel's one top-level message."""
    (top,) = [m.ts for m in fake.messages(channel) if m.thread_ts is None]
    return top


# -- the pacer ---------------------------------------------------------------------------
def test_posts_are_paced_per_channel_and_edits_per_workspace() -> None:
    now = [0.0]
    pacer = Pacer(Limits(post_interval=1.0, update_per_window=2, window=60.0), clock=lambda: now[0])
    pacer.acquire(POST, "C1")
    assert pacer.wait(POST, "C1") == 1.0
    assert pacer.wait(POST, "C2") == 0.0  # another channel is not held back
    pacer.acquire(UPDATE, "C1")
    pacer.acquire(UPDATE, "C2")
    assert pacer.wait(UPDATE, "C3") == 60.0  # edits count across the workspace
    now[0] = 0.5
    with pytest.raises(NotYet):  # would wait longer than max_wait (sleep does not move time)
        pacer.acquire(UPDATE, "C3")
    now[0] = 60.0
    pacer.acquire(UPDATE, "C3")


def test_a_channels_next_post_is_timed_from_slacks_answer() -> None:
    """Slack counts a post when it arrives, before it answers: timing the next one from
    the answer keeps a whole interval between arrivals however slow the round trip."""
    now = [0.0]
    pacer = Pacer(Limits(post_interval=1.0), clock=lambda: now[0])
    pacer.acquire(POST, "C1")
    now[0] = 0.4  # the answer took 0.4 s
    pacer.answered(POST, "C1")
    now[0] = 1.0
    assert pacer.wait(POST, "C1") == pytest.approx(0.4)
    assert pacer.wait(POST, "C2") == 0.0
    # A quick answer never shortens the interval taken when the post was sent.
    now[0] = 1.4
    pacer.acquire(POST, "C2")
    pacer.answered(POST, "C2")
    assert pacer.wait(POST, "C2") == pytest.approx(1.0)
    pacer.answered(UPDATE, "C2")  # edits are counted per minute, not timed from answers
    assert pacer.wait(UPDATE, "C2") == 0.0


def test_a_retry_after_holds_its_method_in_its_scope_only() -> None:
    now = [0.0]
    pacer = Pacer(NO_LIMITS, clock=lambda: now[0])
    pacer.hold(POST, "C1", 3)
    pacer.hold(UPDATE, "C1", 5)
    assert pacer.held(POST, "C1") == 3
    assert pacer.held(POST, "C2") == 0  # posts: per channel
    assert pacer.held(UPDATE, "C2") == 5  # edits: per workspace
    assert pacer.held("conversations.history", "C1") == 0
    now[0] = 3.0
    assert pacer.wait(POST, "C1") == 0


# -- delivery ----------------------------------------------------------------------------
def test_paced_delivery_meets_the_floor_without_a_single_429(
    rt: Runtime, limited: FakeSlack, clock: FakeClock
) -> None:
    """An incident opened and updated 6 times, 0.5 s apart, in 3 channels: every channel is
    complete a post a second after its announcement, and Slack never has to say no."""
    d = deliverer(rt, limited, clock, paced=True)
    run(rt, "/incident open API errors -- Opened.")
    words = [f"Step {n}." for n in range(1, 7)]
    start = seconds(clock)
    step = 0.05
    for tick in range(400):
        if tick and tick % 10 == 0 and tick // 10 <= len(words):  # every 0.5 s
            run(rt, f"/incident update 1 -- {words[tick // 10 - 1]}")
        d.deliver_pending()
        if tick // 10 >= len(words) and pending(rt) == 0:
            break
        clock.advance(seconds=step)
    d.close()
    done = seconds(clock) - start
    assert pending(rt) == 0
    assert [c for c in limited.calls if c.status == 429] == []
    assert_once_in_order(limited, words)
    floor = len(words)  # the announcement, then a reply a second in each channel
    assert done <= floor * 1.2, (done, floor)
    for channel in CHANNELS:
        # Coalesced: far fewer edits than updates, and the last shows the latest state.
        assert 1 <= len(edits(limited, channel)) < len(words)
        assert "Step 6." in shown(edits(limited, channel)[-1])


def test_unpaced_429s_are_honoured_exactly_once_and_in_order(
    rt: Runtime, limited: FakeSlack, clock: FakeClock
) -> None:
    """Without pacing, Slack's 429s slow the deliverer down; nothing is lost or doubled,
    each thread stays in order, and a limit hit in one channel holds back only that one."""
    d = deliverer(rt, limited, clock, paced=False)
    words = ["One.", "Two.", "Three.", "Four."]
    run(rt, "/incident open API errors -- Opened.")
    run(rt, *(f"/incident update 1 -- {w}" for w in words))
    drain(d, rt, clock, step=0.5)
    assert pending(rt) == 0
    refused = [c for c in limited.calls if c.status == 429]
    assert refused, "the deliverer ran into Slack's limit"
    assert {c.params["channel"] for c in refused} <= set(CHANNELS)
    assert_once_in_order(limited, words)
    for channel in CHANNELS:
        assert "Four." in shown(edits(limited, channel)[-1])


def test_waiting_changes_are_coalesced_into_one_edit_showing_the_latest(
    rt: Runtime, limited: FakeSlack, clock: FakeClock
) -> None:
    d = deliverer(rt, limited, clock, paced=True)
    words = ["One.", "Two.", "Three.", "Four.", "Five."]
    run(rt, "/incident open API errors -- Opened.")
    run(rt, *(f"/incident update 1 -- {w}" for w in words))
    drain(d, rt, clock, step=0.25)
    d.close()
    assert pending(rt) == 0
    assert_once_in_order(limited, words)
    for channel in CHANNELS:
        (edit,) = edits(limited, channel)
        assert "Five." in shown(edit)
        assert edit.params["ts"] == announcement(limited, channel)


def test_two_deliverer_processes_send_each_message_once_in_order(
    engine: Engine, db_url: str, settings: Settings, clock: FakeClock
) -> None:
    """Two processes, each pacing itself, drain one outbox against Slack's real limits:
    together they run ahead of Slack, and its 429s are honoured; every message is posted
    once, each thread in order."""
    fake = FakeSlack(limits=SlackLimits()).start()
    try:
        rt = Runtime(replace(settings, notify_channels=CHANNELS), engine=engine, clock=clock)
        words = ["One.", "Two.", "Three."]
        run(rt, "/incident open API errors -- Opened.", "/incident open Web slow -- Slow.")
        run(rt, *(f"/incident update 1 -- {w}" for w in words))
        run(rt, *(f"/incident update 2 -- Web {w}" for w in words))
        total = pending(rt)
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.deliverer_process", db_url, fake.api_url, "60"],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [w.communicate(timeout=90) for w in workers]
        assert all(w.returncode == 0 for w in workers), outputs
        delivered = [int(out.strip().splitlines()[-1]) for out, _ in outputs]
        assert pending(rt) == 0
        assert sum(delivered) == total
        for channel in CHANNELS:
            tops = [c for c in posts(fake, channel) if "thread_ts" not in c.params]
            assert len(tops) == 2, channel
            for number, prefix in ((1, ""), (2, "Web ")):
                expected = [prefix + w for w in words]
                thread = [
                    shown(c)
                    for c in posts(fake, channel)
                    if "thread_ts" in c.params and ("Web " in shown(c)) == (number == 2)
                ]
                assert [e for t in thread for e in expected if e in t] == expected
                assert len(thread) == len(words)
    finally:
        fake.stop()


def test_a_reply_does_not_wait_for_the_workspaces_edit_allowance(
    rt: Runtime, limited: FakeSlack, clock: FakeClock
) -> None:
    """With this minute's edits spent, an update's thread reply goes at once; the
    announcement is brought up to date, once, when the allowance comes back."""
    allowance = len(CHANNELS)  # one edit a channel a minute
    pacer = Pacer(
        Limits(update_per_window=allowance, window=60.0),
        clock=lambda: seconds(clock),
        sleep=lambda s: None,
    )
    d = Deliverer(
        rt.factory,
        SlackGateway("xoxb-test", base_url=limited.api_url),
        page_url=PAGE,
        tz=rt.settings.tz,
        clock=clock,
        pacer=pacer,
        threads=1,
    )
    run(rt, "/incident open API errors -- Opened.")
    drain(d, rt, clock, step=1.0)
    run(rt, "/incident update 1 -- One.")  # its edits take the minute's allowance
    drain(d, rt, clock, step=1.0)
    assert len(limited.calls_to("chat.update")) == allowance
    run(rt, "/incident update 1 -- Two.")
    clock.advance(seconds=1.1)
    d.deliver_pending()
    for channel in CHANNELS:
        thread = [shown(c) for c in posts(limited, channel) if "thread_ts" in c.params]
        assert len(thread) == 2 and "Two." in thread[-1], "the reply went without its edit"
        assert "Two." not in shown(edits(limited, channel)[-1])
    assert len(limited.calls_to("chat.update")) == allowance, "no edit beyond the allowance"
    # The edit left for later heads the incident's line (tried, and put back until the
    # allowance returns); the next update must not wait behind it for the allowance.
    clock.advance(seconds=1.1)
    d.deliver_pending()
    assert len(limited.calls_to("chat.update")) == allowance
    run(rt, "/incident update 1 -- Three.")
    for _ in range(8):  # four seconds
        clock.advance(seconds=0.5)
        d.deliver_pending()
    for channel in CHANNELS:
        thread = [shown(c) for c in posts(limited, channel) if "thread_ts" in c.params]
        assert len(thread) == 3 and "Three." in thread[-1], "not held back by the left-over edit"
    assert len(limited.calls_to("chat.update")) == allowance
    drain(d, rt, clock, step=5.0)  # the minute passes
    d.close()
    assert pending(rt) == 0
    assert [c for c in limited.calls if c.status == 429] == []
    assert_once_in_order(limited, ["One.", "Two.", "Three."])
    for channel in CHANNELS:
        (_, caught_up) = edits(limited, channel)
        assert "Three." in shown(caught_up), "the announcement caught up, with one edit"
