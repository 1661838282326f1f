"""Outbox delivery through the fake Slack Web API: once, in order, through failures and restarts.

Every test runs on SQLite, and on PostgreSQL too when TEST_DATABASE_URL is set.
Time is the fixture's fake clock: nothing here waits for a Retry-After or a backoff.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from bot.delivery_worker import DeliveryWorker
from bot.runtime import Runtime
from bot.settings import Settings
from bot.slack.delivery import Deliverer, start_delivery
from bot.slack.gateway import SlackGateway
from renderers import slack_modals as ui
from storage import outbox
from storage.db import transaction
from storage.models import Announcement, Incident, OutboxEntry
from tests.conftest import FakeClock
from tests.fake_slack import Call, FakeSlack
from tests.test_slack_http import code_of, slack_settings, start

PAGE = "https://status.example.com"


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    for line in ["/component add API", "/component add Web"]:
        assert runtime.run_line(line, user="U1").ok
    return runtime


@pytest.fixture
def gateway(fake: FakeSlack) -> SlackGateway:
    return SlackGateway("xoxb-test", base_url=fake.api_url)


def make_deliverer(rt: Runtime, gateway: SlackGateway, clock: FakeClock, **kw: Any) -> Deliverer:
    # jitter=1.0: the backoff is its ceiling (2s, 4s, 8s…), so tests can step to it.
    return Deliverer(
        rt.factory, gateway, page_url=PAGE, tz=rt.settings.tz, clock=clock, jitter=lambda: 1.0, **kw
    )


@pytest.fixture
def deliverer(rt: Runtime, gateway: SlackGateway, clock: FakeClock) -> Deliverer:
    return make_deliverer(rt, gateway, clock)


def run(rt: Runtime, *lines: str) -> None:
    for line in lines:
        result = rt.run_line(line, user="U1")
        assert result.ok, result.reply


# -- reading what Slack saw ------------------------------------------------------------
def texts(value: Any) -> list[str]:
    if isinstance(value, dict):
        out: list[str] = []
        for key, item in value.items():
            out += [item] if key == "text" and isinstance(item, str) else texts(item)
        return out
    if isinstance(value, list):
        return [t for item in value for t in texts(item)]
    return []


def shown(call: Call) -> str:
    """Everything a message shows: its blocks' texts and its fallback."""
    return "\n".join([*texts(call.params.get("blocks") or []), str(call.params.get("text"))])


# An injected `ok: false` error is answered with HTTP 200, so the fake counts it among
# the successful calls; the tests that inject one account for it.
def announcements(fake: FakeSlack) -> list[Call]:
    return [c for c in fake.calls_to("chat.postMessage") if "thread_ts" not in c.params]


def replies(fake: FakeSlack) -> list[Call]:
    return [c for c in fake.calls_to("chat.postMessage") if "thread_ts" in c.params]


def has_buttons(call: Call) -> bool:
    return any(b["type"] == "actions" for b in call.params.get("blocks") or [])


def entries(rt: Runtime) -> list[OutboxEntry]:
    with rt.factory() as s:
        return list(
            s.scalars(
                select(OutboxEntry).where(OutboxEntry.kind == "slack").order_by(OutboxEntry.id)
            )
        )


def pending(rt: Runtime) -> int:
    with rt.factory() as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(OutboxEntry)
                .where(
                    OutboxEntry.kind == "slack",
                    OutboxEntry.delivered_at.is_(None),
                    OutboxEntry.failed_at.is_(None),
                )
            )
            or 0
        )


def announcement_ts(rt: Runtime, number: int, channel: str = "C0INCIDENTS") -> str:
    with rt.factory() as s:
        found = s.scalar(
            select(Announcement.ts)
            .join(Incident, Incident.id == Announcement.incident_id)
            .where(Incident.number == number, Announcement.channel == channel)
        )
        assert found is not None
        return found


def drain(deliverer: Deliverer, rt: Runtime, clock: FakeClock, *, step: float = 1.0) -> None:
    """Deliver until nothing is pending, moving the clock on between passes."""
    for _ in range(200):
        deliverer.deliver_pending()
        if pending(rt) == 0:
            return
        clock.advance(seconds=step)
    raise AssertionError(f"still pending: {[(e.id, e.last_error) for e in entries(rt)]}")


# -- the happy path -------------------------------------------------------------------
def test_announcement_posted_once_then_edited_with_updates_in_its_thread(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack, clock: FakeClock
) -> None:
    run(rt, "/incident open API errors --components API=major -- Requests are failing.")
    assert deliverer.deliver_pending() == 1
    (posted,) = announcements(fake)
    assert posted.params["channel"] == "C0INCIDENTS"
    assert "#1 API errors" in shown(posted) and "Requests are failing." in shown(posted)
    assert has_buttons(posted)
    ts = announcement_ts(rt, 1)
    assert ts == fake.messages("C0INCIDENTS")[0].ts  # the ts Slack answered is the one kept

    steps = [
        ("/incident update 1 --status identified -- A bad deploy.", "Identified"),
        (
            "/incident update 1 --status monitoring --components API=ok -- Rolled back.",
            "Monitoring",
        ),
        ("/incident resolve 1 -- All good.", "Resolved"),
    ]
    for line, label in steps:
        clock.advance(minutes=5)
        run(rt, line)
        assert deliverer.deliver_pending() == 1
        edit = fake.calls_to("chat.update")[-1]
        assert edit.params["ts"] == ts and edit.params["channel"] == "C0INCIDENTS"
        assert f"*{label}*" in shown(edit) or label in shown(edit)

    assert fake.counts() == {"chat.postMessage": 4, "chat.update": 3}
    assert len(announcements(fake)) == 1
    thread = replies(fake)
    assert [c.params["thread_ts"] for c in thread] == [ts, ts, ts]
    assert [
        b for c in thread for b in ("A bad deploy.", "Rolled back.", "All good.") if b in shown(c)
    ] == ["A bad deploy.", "Rolled back.", "All good."]
    assert [c.params["reply_broadcast"] for c in thread] == [False, False, True]
    assert "API: Major Outage → Operational" in shown(thread[1])
    final = fake.calls_to("chat.update")[-1]
    assert "Resolved" in shown(final) and not has_buttons(final)
    assert "API: Operational" in shown(final)

    assert deliverer.deliver_pending() == 0
    assert fake.counts() == {"chat.postMessage": 4, "chat.update": 3}
    assert all(e.delivered_at is not None and e.message_ts for e in entries(rt))


def test_edit_only_edits_the_announcement(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack
) -> None:
    run(rt, "/incident open API errors -- Looking.")
    deliverer.deliver_pending()
    run(rt, "/incident edit 1 --title Checkout errors")
    assert deliverer.deliver_pending() == 1
    assert fake.counts() == {"chat.postMessage": 1, "chat.update": 1}
    assert "#1 Checkout errors" in shown(fake.calls_to("chat.update")[0])


def test_an_edited_update_corrects_its_thread_reply_too(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack
) -> None:
    run(rt, "/incident open API errors -- Looking.", "/incident update 1 -- A bda deploy.")
    assert deliverer.deliver_pending() == 2
    (reply,) = replies(fake)
    reply_ts = next(e.message_ts for e in entries(rt) if e.event == "incident.updated")
    assert reply_ts and "A bda deploy." in shown(reply)
    run(rt, "/incident edit 1 --update 2 -- A bad deploy.")
    assert deliverer.deliver_pending() == 1
    fixed = [c for c in fake.calls_to("chat.update") if c.params["ts"] == reply_ts]
    assert len(fixed) == 1 and "A bad deploy." in shown(fixed[0])
    assert "A bda deploy." not in shown(fixed[0])
    edited = [c for c in fake.calls_to("chat.update") if c.params["ts"] == announcement_ts(rt, 1)]
    assert "A bad deploy." in shown(edited[-1])  # the announcement shows the latest update
    assert len(replies(fake)) == 1  # corrected in place, nothing new in the thread
    # Editing the opening message (never a reply) only edits the announcement.
    run(rt, "/incident edit 1 --update 1 -- Looking into it.")
    calls = len(fake.calls)
    assert deliverer.deliver_pending() == 1
    assert [c.method for c in fake.calls[calls:]] == ["chat.update"]


def test_maintenance_lifecycle(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack, clock: FakeClock
) -> None:
    run(
        rt,
        "/maintenance schedule Database upgrade --start in 2h --end in 4h --components API "
        "-- We will upgrade the database.",
    )
    assert deliverer.deliver_pending() == 1
    (posted,) = announcements(fake)
    buttons = [
        e["action_id"]
        for b in posted.params["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    assert buttons == ["incident_update"]
    assert "Window" in shown(posted)
    clock.advance(hours=2)
    run(rt, "/maintenance start 1")
    clock.advance(hours=1)
    run(rt, "/maintenance complete 1")
    assert deliverer.deliver_pending() == 2
    started, completed = replies(fake)
    assert started.params["reply_broadcast"] is True and "In progress" in shown(started)
    assert completed.params["reply_broadcast"] is True and "Completed" in shown(completed)
    assert fake.counts() == {"chat.postMessage": 3, "chat.update": 1}
    final = fake.calls_to("chat.update")[-1]
    assert "Completed" in shown(final) and not has_buttons(final)


def test_component_change_is_a_channel_message(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack
) -> None:
    run(rt, "/component set API major -- Payments are failing.")
    assert deliverer.deliver_pending() == 1
    (message,) = fake.calls_to("chat.postMessage")
    assert "thread_ts" not in message.params
    assert "*API*: Operational → Major Outage" in shown(message)
    assert "Payments are failing." in shown(message)


def test_a_backlog_is_sent_in_order_and_edits_are_coalesced(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack
) -> None:
    run(
        rt,
        "/incident open API errors -- One.",
        "/incident update 1 -- Two.",
        "/incident update 1 -- Three.",
        "/incident update 1 -- Four.",
    )
    assert deliverer.deliver_pending() == 4
    ts = announcement_ts(rt, 1)
    assert [
        ("Two." in shown(c), "Three." in shown(c), "Four." in shown(c)) for c in replies(fake)
    ] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ]
    assert {c.params["thread_ts"] for c in replies(fake)} == {ts}
    # The announcement is posted showing the current state: only the last entry edits it.
    assert fake.counts() == {"chat.postMessage": 4, "chat.update": 1}
    assert "Four." in shown(announcements(fake)[0])


def test_several_channels_each_get_one_announcement(
    engine: Engine, settings: Settings, clock: FakeClock, gateway: SlackGateway, fake: FakeSlack
) -> None:
    rt = Runtime(replace(settings, notify_channels=("C1", "C2")), engine=engine, clock=clock)
    run(rt, "/incident open API errors -- One.", "/incident resolve 1 -- Done.")
    assert make_deliverer(rt, gateway, clock).deliver_pending() == 4
    assert sorted(c.params["channel"] for c in announcements(fake)) == ["C1", "C2"]
    for channel in ("C1", "C2"):
        (reply,) = [c for c in replies(fake) if c.params["channel"] == channel]
        assert reply.params["thread_ts"] == announcement_ts(rt, 1, channel)


# -- rate limits and errors -----------------------------------------------------------
def test_a_429_storm_is_honoured_without_loss_or_duplicates(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack, clock: FakeClock
) -> None:
    run(rt, "/incident open API errors -- One.")
    fake.fail("chat.postMessage", status=429, retry_after=1, times=5)
    for _ in range(5):
        assert deliverer.deliver_pending() == 0
        (entry,) = entries(rt)
        assert (entry.next_attempt_at - clock.now).total_seconds() == 1
        assert "ratelimited" in (entry.last_error or "")
        assert deliverer.paused("C0INCIDENTS")
        # While paused nothing goes to that channel.
        seen = len(fake.calls)
        assert deliverer.deliver_pending() == 0
        assert len(fake.calls) == seen
        clock.advance(seconds=1)
    run(rt, "/incident update 1 -- Two.")
    assert deliverer.deliver_pending() == 2
    assert len(fake.calls_to("chat.postMessage", ok_only=False)) == 5 + 2
    assert fake.counts() == {"chat.postMessage": 2, "chat.update": 1}
    assert entries(rt)[0].attempts == 0  # a 429 is not the entry's fault


def test_5xx_backs_off_exponentially_then_delivers_once(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack, clock: FakeClock
) -> None:
    run(rt, "/incident open API errors -- One.")
    fake.fail("chat.postMessage", status=500, times=3)
    for attempt, wait in enumerate([2, 4, 8], start=1):
        assert deliverer.deliver_pending() == 0
        (entry,) = entries(rt)
        assert entry.attempts == attempt
        assert (entry.next_attempt_at - clock.now).total_seconds() == wait
        assert "fatal_error" in (entry.last_error or "")
        assert entry.claimed_by is None
        calls = len(fake.calls)
        clock.advance(seconds=wait - 1)
        assert deliverer.deliver_pending() == 0  # not due yet
        assert len(fake.calls) == calls
        clock.advance(seconds=1)
    assert deliverer.deliver_pending() == 1
    # Each retry first asks Slack whether the failed post got through after all.
    assert fake.counts() == {"chat.postMessage": 1, "conversations.history": 3}
    assert len(fake.calls_to("chat.postMessage", ok_only=False)) == 4
    assert len(fake.messages("C0INCIDENTS")) == 1


def test_backoff_is_capped(rt: Runtime, gateway: SlackGateway, clock: FakeClock) -> None:
    deliverer = make_deliverer(rt, gateway, clock)
    assert [deliverer._backoff(n) for n in (1, 2, 3, 9, 10, 30)] == [2, 4, 8, 300, 300, 300]


def test_storms_of_429s_and_500s_lose_and_duplicate_nothing(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack, clock: FakeClock
) -> None:
    for n in (1, 2, 3):
        run(rt, f"/incident open Incident {n} -- Opened {n}.")
    for n in (1, 2, 3):
        run(rt, f"/incident update {n} -- Update {n}a.", f"/incident update {n} -- Update {n}b.")
        run(rt, f"/incident resolve {n} -- Resolved {n}.")
    run(rt, "/component set Web degraded -- Slow.")
    for method in ("chat.postMessage", "chat.update"):
        fake.fail(method, status=429, retry_after=2, times=3)
        fake.fail(method, status=500, times=3)
        fake.fail(method, status=503, times=2)
    drain(deliverer, rt, clock, step=5)
    assert all(e.failed_at is None and e.delivered_at is not None for e in entries(rt))
    assert len(announcements(fake)) == 4  # three incidents, one component change
    for n in (1, 2, 3):
        ts = announcement_ts(rt, n)
        thread = [shown(c) for c in replies(fake) if c.params["thread_ts"] == ts]
        expected = [f"Update {n}a.", f"Update {n}b.", f"Resolved {n}."]
        assert len(thread) == 3
        assert [e for t in thread for e in expected if e in t] == expected
        edits = [c for c in fake.calls_to("chat.update") if c.params["ts"] == ts]
        assert edits and "Resolved" in shown(edits[-1])
    assert fake.counts()["chat.postMessage"] == 3 + 9 + 1


def test_a_permanent_error_gives_up_without_blocking_later_entries(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack
) -> None:
    run(rt, "/incident open API errors -- One.")
    deliverer.deliver_pending()
    run(rt, "/incident update 1 -- Two.", "/incident update 1 -- Three.")
    fake.fail("chat.postMessage", error="msg_too_long")
    assert deliverer.deliver_pending() == 1  # Two. fails for good; Three. still goes out
    failed, sent = entries(rt)[1:]
    assert failed.failed_at is not None and failed.delivered_at is None
    assert "msg_too_long" in (failed.last_error or "")
    assert sent.delivered_at is not None
    # Only the reply that went out is in the channel; the refused one is recorded as refused.
    assert [("Two." in shown(c), "Three." in shown(c)) for c in replies(fake)] == [(False, True)]
    refused = [c for c in fake.calls_to("chat.postMessage", ok_only=False) if not c.ok]
    assert len(refused) == 1 and "Two." in shown(refused[0])
    assert deliverer.deliver_pending() == 0  # the failed one stays failed
    assert len(replies(fake)) == 1


def test_a_failing_entry_holds_back_only_its_own_incident(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack, clock: FakeClock
) -> None:
    run(rt, "/incident open First -- One.", "/incident open Second -- One.")
    assert deliverer.deliver_pending() == 2
    run(rt, "/incident update 1 -- 1a.", "/incident update 1 -- 1b.", "/incident update 2 -- 2a.")
    fake.fail("chat.postMessage", status=500)  # 1a's thread reply
    assert deliverer.deliver_pending() == 1
    assert ["2a." in shown(c) for c in replies(fake)] == [True]
    first_a, first_b = entries(rt)[2:4]
    assert first_a.attempts == 1 and first_b.delivered_at is None and first_b.attempts == 0
    clock.advance(seconds=2)
    assert deliverer.deliver_pending() == 2
    assert [("1a." in shown(c), "1b." in shown(c)) for c in replies(fake)[1:]] == [
        (True, False),
        (False, True),
    ]


def test_too_many_transient_failures_give_up(
    rt: Runtime, gateway: SlackGateway, fake: FakeSlack, clock: FakeClock
) -> None:
    deliverer = make_deliverer(rt, gateway, clock, max_attempts=2)
    run(rt, "/incident open API errors -- One.")
    fake.fail("chat.postMessage", status=503, times=2)
    deliverer.deliver_pending()
    clock.advance(seconds=2)
    deliverer.deliver_pending()
    (entry,) = entries(rt)
    assert entry.failed_at is not None and entry.attempts == 2
    assert "gave up after 2 attempts" in (entry.last_error or "")
    # The incident's next entry posts the announcement the failed one could not.
    run(rt, "/incident update 1 -- Two.")
    assert deliverer.deliver_pending() == 1
    assert len(announcements(fake)) == 1 and len(replies(fake)) == 1


def test_by_default_an_entry_is_given_up_after_20_failed_attempts(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack, clock: FakeClock
) -> None:
    run(rt, "/incident open API errors -- One.")
    fake.fail("chat.postMessage", status=503, times=25)
    for attempt in range(1, 21):
        assert deliverer.deliver_pending() == 0
        (entry,) = entries(rt)
        assert entry.attempts == attempt
        if attempt < 20:
            assert entry.failed_at is None, f"given up after {attempt} attempts"
            clock.now = entry.next_attempt_at  # its retry is due
    assert entry.failed_at == clock.now
    assert entry.last_error == "chat.postMessage: fatal_error (gave up after 20 attempts)"
    # Given up means never tried again, however long we wait.
    calls = len(fake.calls)
    clock.advance(days=1)
    assert deliverer.deliver_pending() == 0
    assert len(fake.calls) == calls
    assert len(fake.calls_to("chat.postMessage", ok_only=False)) == 20


@pytest.mark.parametrize(("newer", "found"), [(199, True), (200, False)])
def test_a_lost_post_is_looked_for_among_the_channels_latest_200_messages(
    rt: Runtime,
    deliverer: Deliverer,
    fake: FakeSlack,
    clock: FakeClock,
    newer: int,
    found: bool,
) -> None:
    run(rt, "/incident open API errors -- One.")
    fake.fail("chat.postMessage", status=500, lost_answer=True)
    assert deliverer.deliver_pending() == 0
    (lost,) = fake.messages("C0INCIDENTS")  # Slack has it; we don't know
    fake.chatter("C0INCIDENTS", newer)  # the channel moves on before the retry
    clock.advance(seconds=2)
    assert deliverer.deliver_pending() == 1
    (asked,) = fake.calls_to("conversations.history")
    assert asked.params["limit"] == "200"
    ours = [m for m in fake.messages("C0INCIDENTS") if not m.text.startswith("chatter")]
    if found:  # the 200th newest: still on the page Slack answers
        assert ours == [lost] and announcement_ts(rt, 1) == lost.ts
    else:  # the 201st: out of sight, so posted again (at least once beats never)
        assert len(ours) == 2 and announcement_ts(rt, 1) == ours[1].ts


def test_with_notify_off_nothing_is_sent_at_all(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeSlack, tmp_path: Path
) -> None:
    # Through Slack's own path: each modal submitted, signed, with "Announce it" unticked.
    with contextmanager(start)(slack_settings(settings, fake, tmp_path), engine, clock, fake) as (
        slack
    ):
        assert "Added" in slack.reply("/component", "add API")
        slack.command("/incident")
        api = code_of(slack, "API")
        declared = slack.submit(
            slack.wait_view(),
            {
                ui.TITLE: "Checkout errors",
                ui.COMPONENT + api: "major_outage",
                ui.MESSAGE: "Payments fail.",
                ui.NOTIFY: [],
            },
        )
        assert declared.body == b""
        assert "Not announced (notify off)" in slack.wait_response(1)
        slack.button("incident_update", "1")
        update = {ui.STATUS: "monitoring", ui.MESSAGE: "Fix out.", ui.NOTIFY: []}
        assert slack.submit(slack.wait_view(2), update).body == b""
        assert "Not announced (notify off)" in slack.wait_response(2)
        slack.button("incident_resolve", "1")
        assert slack.submit(slack.wait_view(3), {ui.NOTIFY: []}).body == b""
        assert "Not announced (notify off)" in slack.wait_response(3)
        assert slack.incident(1).status == "resolved"
    # Only what served the person went to Slack (their modals, their time zone, the
    # replies to them): nothing posted to a channel, edited, or looked for.
    assert {c.method for c in fake.calls} == {"views.open", "users.info", "response_url"}
    rt = Runtime(settings, engine=engine, clock=clock)
    assert entries(rt) == []
    calls = len(fake.calls)
    gateway = SlackGateway("xoxb-test", base_url=fake.api_url)
    assert make_deliverer(rt, gateway, clock).deliver_pending() == 0
    assert len(fake.calls) == calls


class FailReplies(SlackGateway):
    """A gateway whose next thread replies get an HTTP 500 from the fake."""

    def __init__(self, fake: FakeSlack, times: int) -> None:
        super().__init__("xoxb-test", base_url=fake.api_url)
        self.fake = fake
        self.times = times

    def post_message(self, channel: str, **kw: Any) -> str:
        if kw.get("thread_ts") and self.times:
            self.times -= 1
            self.fake.fail("chat.postMessage", status=500)
        return super().post_message(channel, **kw)


def test_a_failed_reply_never_reposts_the_announcement(
    rt: Runtime, fake: FakeSlack, clock: FakeClock
) -> None:
    deliverer = make_deliverer(rt, FailReplies(fake, times=1), clock)
    run(rt, "/incident open API errors -- One.")
    fake.fail("chat.postMessage", error="channel_not_found")  # the opening entry fails for good
    deliverer.deliver_pending()
    fake.calls.clear()  # that refusal was answered with HTTP 200: start counting afresh
    run(rt, "/incident update 1 -- Two.")
    assert deliverer.deliver_pending() == 0  # announcement posted, then its reply failed
    assert len(announcements(fake)) == 1
    ts = announcement_ts(rt, 1)
    update_entry = entries(rt)[1]
    assert update_entry.delivered_at is None and update_entry.attempts == 1
    clock.advance(seconds=2)
    assert deliverer.deliver_pending() == 1
    assert len(announcements(fake)) == 1
    (reply,) = replies(fake)
    assert reply.params["thread_ts"] == ts and "Two." in shown(reply)


def test_a_deleted_announcement_is_posted_again(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack
) -> None:
    run(rt, "/incident open API errors -- One.")
    deliverer.deliver_pending()
    old = announcement_ts(rt, 1)
    fake.fail("chat.update", error="message_not_found")
    run(rt, "/incident update 1 -- Two.")
    assert deliverer.deliver_pending() == 1
    new = announcement_ts(rt, 1)
    assert new != old
    assert len(announcements(fake)) == 2
    assert replies(fake)[0].params["thread_ts"] == new


def test_reminders_go_to_the_thread(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack, clock: FakeClock
) -> None:
    run(rt, "/incident open API errors -- One.")
    deliverer.deliver_pending()
    with transaction(rt.factory) as s:
        incident_id = s.scalars(select(Incident.id)).one()
        for event in ("incident.stale", "maintenance.notice"):
            outbox.enqueue(
                s,
                channels=["C0INCIDENTS"],
                event=event,
                at=clock.now,
                incident_id=incident_id,
                payload={"number": 1, "text": f"{event}: <!channel> has had no update."},
            )
        outbox.enqueue(s, channels=["C0INCIDENTS"], event="mystery", at=clock.now)
    assert deliverer.deliver_pending() == 2
    stale, notice = replies(fake)
    assert stale.params["reply_broadcast"] is False and notice.params["reply_broadcast"] is True
    assert "&lt;!channel&gt;" in shown(stale) and "<!channel>" not in shown(stale)
    assert fake.counts() == {"chat.postMessage": 3}  # reminders change nothing to edit
    mystery = entries(rt)[-1]
    assert mystery.failed_at is not None and "mystery" in (mystery.last_error or "")


def test_hostile_text_arrives_escaped(rt: Runtime, deliverer: Deliverer, fake: FakeSlack) -> None:
    # As Slack sends what a person typed: their < > & arrive as entities.
    hostile = "&lt;!channel&gt; &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;@U123&gt; @here"
    run(rt, f"/incident open {hostile} -- {hostile}")
    run(rt, f"/incident update 1 -- **{hostile}**")
    deliverer.deliver_pending()
    with rt.factory() as s:
        assert s.scalars(select(Incident.title)).one().startswith("<!channel> <script>")
    for call in fake.calls_to("chat.postMessage") + fake.calls_to("chat.update"):
        text = shown(call)
        for raw in ("<!channel>", "<script>", "<@U123>", "@here"):
            assert raw not in text
        assert "&lt;!channel&gt; &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;@U123&gt;" in text


# -- crashes, restarts, and two deliverers --------------------------------------------
class Crash(BaseException):
    """The process dies: nothing in the deliverer catches this."""


class CrashOnReply(SlackGateway):
    def post_message(self, channel: str, **kw: Any) -> str:
        if kw.get("thread_ts"):
            raise Crash
        return super().post_message(channel, **kw)


def test_a_restart_resumes_where_a_crashed_deliverer_stopped(
    rt: Runtime, fake: FakeSlack, clock: FakeClock
) -> None:
    run(
        rt,
        "/incident open API errors -- One.",
        "/incident update 1 -- Two.",
        "/incident update 1 -- Three.",
    )
    crashing = make_deliverer(rt, CrashOnReply("xoxb-test", base_url=fake.api_url), clock)
    with pytest.raises(Crash):
        crashing.deliver_pending()
    assert len(announcements(fake)) == 1 and replies(fake) == []

    restarted = make_deliverer(rt, SlackGateway("xoxb-test", base_url=fake.api_url), clock)
    assert restarted.deliver_pending() == 0  # the dead process's lease still holds
    clock.advance(minutes=3)
    assert restarted.deliver_pending() == 2
    ts = announcement_ts(rt, 1)
    assert len(announcements(fake)) == 1
    assert [("Two." in shown(c), "Three." in shown(c)) for c in replies(fake)] == [
        (True, False),
        (False, True),
    ]
    assert {c.params["thread_ts"] for c in replies(fake)} == {ts}
    # The dead process's entry is checked against the thread before its reply goes out.
    assert fake.counts() == {"chat.postMessage": 3, "chat.update": 1, "conversations.replies": 1}


class CrashAfterReply(SlackGateway):
    """Slack takes the thread reply, then the process dies before recording it."""

    def post_message(self, channel: str, **kw: Any) -> str:
        ts = super().post_message(channel, **kw)
        if kw.get("thread_ts"):
            raise Crash
        return ts


def test_a_message_slack_took_before_the_process_died_is_not_posted_again(
    rt: Runtime, fake: FakeSlack, clock: FakeClock
) -> None:
    run(rt, "/incident open API errors -- One.", "/incident update 1 -- Two.")
    crashing = make_deliverer(rt, CrashAfterReply("xoxb-test", base_url=fake.api_url), clock)
    with pytest.raises(Crash):
        crashing.deliver_pending()
    assert [e.delivered_at is not None for e in entries(rt)] == [True, False]
    clock.advance(minutes=3)  # its lease runs out
    restarted = make_deliverer(rt, SlackGateway("xoxb-test", base_url=fake.api_url), clock)
    assert restarted.deliver_pending() == 1
    (reply,) = [m for m in fake.messages("C0INCIDENTS") if m.thread_ts]
    assert len(fake.messages("C0INCIDENTS")) == 2  # the announcement and that one reply
    assert entries(rt)[1].message_ts == reply.ts


def test_an_announcement_slack_took_but_whose_answer_was_lost_is_posted_once(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack, clock: FakeClock
) -> None:
    run(rt, "/incident open API errors -- One.")
    fake.fail("chat.postMessage", status=500, lost_answer=True)
    assert deliverer.deliver_pending() == 0  # a 500: retried later
    (posted,) = fake.messages("C0INCIDENTS")  # but Slack has it
    clock.advance(seconds=2)
    assert deliverer.deliver_pending() == 1
    assert fake.messages("C0INCIDENTS") == [posted]
    assert announcement_ts(rt, 1) == posted.ts
    run(rt, "/incident update 1 -- Two.")
    assert deliverer.deliver_pending() == 1
    assert fake.calls_to("chat.update")[-1].params["ts"] == posted.ts
    (reply,) = [m for m in fake.messages("C0INCIDENTS") if m.thread_ts]
    assert reply.thread_ts == posted.ts


def test_a_reply_whose_answer_was_lost_is_posted_once(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack, clock: FakeClock
) -> None:
    run(rt, "/incident open API errors -- One.")
    assert deliverer.deliver_pending() == 1
    run(rt, "/incident update 1 -- Two.")
    fake.fail("chat.postMessage", status=502, lost_answer=True)
    assert deliverer.deliver_pending() == 0
    clock.advance(seconds=2)
    assert deliverer.deliver_pending() == 1
    thread = [m for m in fake.messages("C0INCIDENTS") if m.thread_ts]
    assert len(thread) == 1 and entries(rt)[1].message_ts == thread[0].ts
    assert fake.calls_to("conversations.replies")[0].params["ts"] == announcement_ts(rt, 1)


@pytest.mark.parametrize(
    ("ours_before", "chatter", "pages", "posts"),
    [
        (False, 450, 3, 1),  # the parent and 450 replies come first: found on page 3
        (True, 450, 3, 1),  # asked for what came after our last reply: the same 450
        (False, 1000, 5, 2),  # past 5 pages of 200: posted again (at least once beats never)
    ],
)
def test_a_lost_reply_is_looked_for_through_a_long_thread(
    rt: Runtime,
    deliverer: Deliverer,
    fake: FakeSlack,
    clock: FakeClock,
    ours_before: bool,
    chatter: int,
    pages: int,
    posts: int,
) -> None:
    # People talk in the announcement's thread; Slack lists a thread oldest first.
    run(rt, "/incident open API errors -- One.")
    assert deliverer.deliver_pending() == 1
    parent = announcement_ts(rt, 1)
    if ours_before:
        run(rt, "/incident update 1 -- Two.")
        assert deliverer.deliver_pending() == 1
    ours = [m.ts for m in fake.messages("C0INCIDENTS") if m.thread_ts]
    fake.chatter("C0INCIDENTS", chatter, thread_ts=parent)
    run(rt, "/incident update 1 -- Three.")
    fake.fail("chat.postMessage", status=502, lost_answer=True)
    assert deliverer.deliver_pending() == 0
    clock.advance(seconds=2)
    assert deliverer.deliver_pending() == 1
    asked = fake.calls_to("conversations.replies")
    assert len(asked) == pages
    assert {c.params.get("oldest") for c in asked} == ({ours[-1]} if ours_before else {None})
    threes = [m for m in fake.messages("C0INCIDENTS") if m.thread_ts and "Three" in m.text]
    assert len(threes) == posts
    assert entries(rt)[-1].message_ts == threes[-1].ts


def test_without_the_history_scope_a_lost_answer_means_a_second_post(
    rt: Runtime, deliverer: Deliverer, fake: FakeSlack, clock: FakeClock
) -> None:
    # Slack can't be asked (no channels:history): at least once beats never.
    run(rt, "/incident open API errors -- One.")
    fake.fail("chat.postMessage", status=500, lost_answer=True)
    fake.fail("conversations.history", error="missing_scope")
    assert deliverer.deliver_pending() == 0
    clock.advance(seconds=2)
    assert deliverer.deliver_pending() == 1
    assert len(fake.messages("C0INCIDENTS")) == 2


def test_the_worker_delivers_when_poked_and_resumes_after_a_restart(
    rt: Runtime, gateway: SlackGateway, fake: FakeSlack
) -> None:
    run(rt, "/incident open API errors -- One.")  # written while nothing delivers
    worker = start_delivery(rt, gateway, interval=60)
    try:
        fake.wait_for("chat.postMessage", 1)  # drained at start
        run(rt, "/incident update 1 -- Two.")  # poked by after_change, long before 60 s
        fake.wait_for("chat.postMessage", 2, timeout=5)
    finally:
        worker.stop()
    rt.after_change.clear()
    run(rt, "/incident update 1 -- Three.")
    assert pending(rt) == 1
    worker = start_delivery(rt, gateway, interval=60)
    try:
        fake.wait_for("chat.postMessage", 3, timeout=5)
    finally:
        worker.stop()
    assert pending(rt) == 0
    assert len(announcements(fake)) == 1 and len(replies(fake)) == 2


class CountingDrain:
    """A deliverer that sends nothing and counts its passes; `held` says whether what is
    due waits for its channel's turn (as the Slack deliverer's next_wake tells)."""

    def __init__(self, held: bool) -> None:
        self.held = held
        self.passes = 0
        self.passed = threading.Condition()

    def deliver_pending(self, limit: int = 50) -> int:
        with self.passed:
            self.passes += 1
            self.passed.notify_all()
        return 0

    def next_wake(self) -> float | None:
        return 30.0 if self.held else None

    def wait_for_pass(self, count: int) -> bool:
        with self.passed:
            return self.passed.wait_for(lambda: self.passes >= count, timeout=10)


def poked(drain: CountingDrain, worker: DeliveryWorker, seconds: float = 0.5) -> int:
    """Start the worker, poke it every 2 ms for `seconds`, stop it; its passes."""
    worker.start()
    try:
        assert drain.wait_for_pass(1)  # the pass at start
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            worker.poke()
            time.sleep(0.002)
    finally:
        worker.stop()
    return drain.passes


def test_pokes_while_every_channel_waits_its_turn_do_not_each_start_a_pass() -> None:
    """A busy channel's queue is poked by every change (about 100 a second under load); a
    pass that finds everything held back rests before the next poke may start another."""
    drain = CountingDrain(held=True)
    passes = poked(
        drain, DeliveryWorker(drain, interval=60, next_wake=drain.next_wake, held_rest=0.2)
    )
    # Half a second of pokes: at most one pass per rest, however many pokes came.
    assert passes <= 1 + 0.5 / 0.2 + 1, passes


def test_pokes_under_load_are_folded_into_a_pass_every_min_gap() -> None:
    drain = CountingDrain(held=False)
    passes = poked(
        drain, DeliveryWorker(drain, interval=60, next_wake=drain.next_wake, min_gap=0.1)
    )
    assert passes <= 1 + 0.5 / 0.1 + 1, passes  # not one per poke (250)


def test_a_poke_after_a_pass_that_found_nothing_held_starts_the_next_at_once() -> None:
    drain = CountingDrain(held=False)
    worker = DeliveryWorker(drain, interval=60, next_wake=drain.next_wake, held_rest=60)
    worker.start()
    try:
        assert drain.wait_for_pass(1)
        for count in range(2, 6):  # each poke is answered long before the 60 s interval
            worker.poke()
            assert drain.wait_for_pass(count)
    finally:
        worker.stop()


class SlowGateway(SlackGateway):
    """Slack taking a few milliseconds per message, so two deliverers overlap."""

    def post_message(self, channel: str, **kw: Any) -> str:
        time.sleep(0.005)
        return super().post_message(channel, **kw)


def test_only_one_claim_of_an_entry_succeeds(
    rt: Runtime, gateway: SlackGateway, clock: FakeClock, fake: FakeSlack
) -> None:
    run(rt, "/incident open API errors -- One.", "/incident update 1 -- Two.")
    first, second = make_deliverer(rt, gateway, clock), make_deliverer(rt, gateway, clock)
    opened, updated = (outbox.Head(e.id, e.channel, e.incident_id) for e in entries(rt))
    token = first._claim(opened)
    assert token is not None
    assert second._claim(opened) is None  # leased to the first
    assert second._claim(updated) is None  # waits for the entry before it
    assert second.deliver_pending() == 0
    clock.advance(minutes=3)  # the first deliverer's lease ran out: it is up for grabs
    assert second._claim(opened) is not None
    assert first._claim(opened) is None
    assert first._deliver(opened.id, token) is False  # a stale claim sends nothing
    assert fake.calls == []


def test_two_deliverers_at_once_send_each_entry_once(
    engine: Engine, settings: Settings, clock: FakeClock, fake: FakeSlack
) -> None:
    rt = Runtime(replace(settings, notify_channels=("C1", "C2")), engine=engine, clock=clock)
    run(rt, "/component add API", "/component add Web")
    for n in (1, 2, 3):
        run(rt, f"/incident open Incident {n} -- Opened {n}.")
        run(rt, f"/incident update {n} -- {n}a.", f"/incident update {n} -- {n}b.")
        run(rt, f"/incident resolve {n} -- {n} resolved.")
        run(rt, f"/component set {'API' if n % 2 else 'Web'} {'major' if n < 3 else 'ok'}")
    total = len(entries(rt))
    assert total == 2 * (3 * 4 + 3)

    errors: list[BaseException] = []
    delivered = [0, 0]

    def work(n: int) -> None:
        try:
            deliverer = make_deliverer(rt, SlowGateway("xoxb-test", base_url=fake.api_url), clock)
            deadline = time.monotonic() + 60
            while pending(rt) and time.monotonic() < deadline:
                delivered[n] += deliverer.deliver_pending(limit=2)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(delivered) == total
    assert min(delivered) > 0, "both deliverers took part"
    assert errors == []
    assert pending(rt) == 0
    assert all(e.failed_at is None for e in entries(rt))
    posts = fake.calls_to("chat.postMessage")
    assert len(posts) == total  # one message per entry: nothing twice
    assert len(announcements(fake)) == 2 * (3 + 3)
    for channel in ("C1", "C2"):
        for n in (1, 2, 3):
            ts = announcement_ts(rt, n, channel)
            thread = [shown(c) for c in replies(fake) if c.params["thread_ts"] == ts]
            expected = [f"{n}a.", f"{n}b.", f"{n} resolved."]
            assert [e for t in thread for e in expected if e in t] == expected
