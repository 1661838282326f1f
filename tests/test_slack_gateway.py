"""The Slack gateway against the fake Web API: calls, error classes, cached lookups."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

import pytest

from bot.slack.gateway import (
    LOOKUP_TTL,
    LookupFailed,
    Permanent,
    RateLimited,
    SlackGateway,
    Transient,
)
from tests.fake_slack import FakeSlack


@dataclass
class Ticker:
    """A monotonic clock and a sleep that only move when told."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
def gateway(fake: FakeSlack, ticker: Ticker) -> SlackGateway:
    return SlackGateway("xoxb-test", base_url=fake.api_url, clock=ticker, sleep=ticker.sleep)


BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]


# -- messages -------------------------------------------------------------------------
def test_post_update_and_thread_reply(gateway: SlackGateway, fake: FakeSlack) -> None:
    ts = gateway.post_message("C1", text="hello", blocks=BLOCKS)
    assert ts
    gateway.update_message("C1", ts, text="edited", blocks=BLOCKS)
    reply = gateway.post_message("C1", text="r", blocks=BLOCKS, thread_ts=ts, reply_broadcast=True)
    assert reply != ts
    first, third = fake.calls_to("chat.postMessage")
    assert first.params["blocks"] == BLOCKS
    assert "thread_ts" not in first.params
    assert first.params["unfurl_links"] is False
    assert third.params["thread_ts"] == ts and third.params["reply_broadcast"] is True
    (edit,) = fake.calls_to("chat.update")
    assert edit.params["ts"] == ts and edit.params["text"] == "edited"


def test_base_url_without_trailing_slash(fake: FakeSlack) -> None:
    gateway = SlackGateway("xoxb-test", base_url=fake.api_url.rstrip("/"))
    assert gateway.post_message("C1", text="x")
    assert fake.counts() == {"chat.postMessage": 1}


def test_open_view_respond_and_ephemeral(gateway: SlackGateway, fake: FakeSlack) -> None:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Declare"}, "blocks": []}
    assert gateway.open_view("T123", view)["id"] == "V0FAKE"
    gateway.respond(fake.url + "/response/abc", {"text": "done", "response_type": "ephemeral"})
    gateway.post_ephemeral("C1", "U1", text="psst")
    assert fake.counts() == {"views.open": 1, "response_url": 1, "chat.postEphemeral": 1}
    assert fake.calls_to("response_url")[0].params["text"] == "done"


# -- errors ---------------------------------------------------------------------------
def test_429_is_rate_limited_with_retry_after(gateway: SlackGateway, fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(RateLimited) as caught:
        gateway.post_message("C1", text="x")
    assert caught.value.retry_after == 7
    assert caught.value.method == "chat.postMessage"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(gateway: SlackGateway, fake: FakeSlack, status: int) -> None:
    fake.fail("chat.update", status=status)
    with pytest.raises(Transient):
        gateway.update_message("C1", "1.0", text="x")


@pytest.mark.parametrize(
    "error", ["internal_error", "fatal_error", "service_unavailable", "request_timeout"]
)
def test_slack_side_errors_are_transient(
    gateway: SlackGateway, fake: FakeSlack, error: str
) -> None:
    fake.fail("chat.postMessage", error=error)
    with pytest.raises(Transient) as caught:
        gateway.post_message("C1", text="x")
    assert caught.value.error == error


@pytest.mark.parametrize(
    "error",
    ["channel_not_found", "not_in_channel", "invalid_auth", "msg_too_long", "invalid_blocks"],
)
def test_request_errors_are_permanent(gateway: SlackGateway, fake: FakeSlack, error: str) -> None:
    fake.fail("chat.postMessage", error=error)
    with pytest.raises(Permanent) as caught:
        gateway.post_message("C1", text="x")
    assert caught.value.error == error


def test_writes_are_tried_once(gateway: SlackGateway, fake: FakeSlack) -> None:
    """No hidden retry: resending a message whose answer was lost would post it twice."""
    fake.fail("chat.postMessage", status=500)
    with pytest.raises(Transient):
        gateway.post_message("C1", text="x")
    assert len(fake.calls_to("chat.postMessage", ok_only=False)) == 1


def test_no_server_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the call: nobody listens
    gateway = SlackGateway("xoxb-test", base_url=f"http://127.0.0.1:{port}/api/", timeout=2)
    with pytest.raises(Transient):
        gateway.post_message("C1", text="x")


def test_respond_errors(gateway: SlackGateway, fake: FakeSlack) -> None:
    url = fake.url + "/response/abc"
    fake.fail("response_url", status=500)
    with pytest.raises(Transient):
        gateway.respond(url, {"text": "x"})
    fake.fail("response_url", status=429, retry_after=2)
    with pytest.raises(RateLimited):
        gateway.respond(url, {"text": "x"})


# -- lookups --------------------------------------------------------------------------
def test_members_of_is_cached_for_a_while(
    gateway: SlackGateway, fake: FakeSlack, ticker: Ticker
) -> None:
    fake.usergroups["S1"] = ["U1", "U2"]
    assert gateway.members_of("S1") == frozenset({"U1", "U2"})
    fake.usergroups["S1"] = ["U3"]
    assert gateway.members_of("S1") == frozenset({"U1", "U2"})
    assert fake.counts() == {"usergroups.users.list": 1}
    ticker.now += LOOKUP_TTL + 1
    assert gateway.members_of("S1") == frozenset({"U3"})
    assert fake.counts() == {"usergroups.users.list": 2}


def test_members_of_retries_briefly(gateway: SlackGateway, fake: FakeSlack, ticker: Ticker) -> None:
    fake.usergroups["S1"] = ["U1"]
    fake.fail("usergroups.users.list", status=500)
    assert gateway.members_of("S1") == frozenset({"U1"})
    assert len(ticker.slept) == 1 and ticker.slept[0] <= 1


def test_members_of_keeps_the_last_good_value(
    gateway: SlackGateway, fake: FakeSlack, ticker: Ticker
) -> None:
    fake.usergroups["S1"] = ["U1"]
    assert gateway.members_of("S1") == frozenset({"U1"})
    ticker.now += 301
    fake.fail("usergroups.users.list", status=500, times=2)
    assert gateway.members_of("S1") == frozenset({"U1"})
    # …and doesn't hammer Slack while it is failing
    calls = len(fake.calls_to("usergroups.users.list", ok_only=False))
    assert gateway.members_of("S1") == frozenset({"U1"})
    assert len(fake.calls_to("usergroups.users.list", ok_only=False)) == calls


def test_a_group_slack_does_not_know_has_no_members(
    gateway: SlackGateway, fake: FakeSlack, ticker: Ticker
) -> None:
    fake.fail("usergroups.users.list", error="no_such_subteam")
    assert gateway.members_of("S9") == frozenset()  # an answer, not a failure
    assert ticker.slept == []  # a permanent error is not retried


def test_members_of_without_a_value_raises(
    gateway: SlackGateway, fake: FakeSlack, ticker: Ticker
) -> None:
    fake.fail("usergroups.users.list", error="missing_scope")
    with pytest.raises(LookupFailed):
        gateway.members_of("S9")
    assert ticker.slept == []  # a permanent error is not retried
    fake.usergroups["S9"] = ["U1"]
    ticker.now += 6
    assert gateway.members_of("S9") == frozenset({"U1"})


def test_a_hanging_lookup_gives_up_quickly_and_is_not_retried(fake: FakeSlack) -> None:
    gateway = SlackGateway("xoxb-test", base_url=fake.api_url, lookup_timeout=0.3)
    fake.hang("usergroups.users.list", times=2)
    started = time.monotonic()
    with pytest.raises(LookupFailed):
        gateway.members_of("S1")
    assert time.monotonic() - started < 1.5  # one short wait, no second try
    assert len(fake.calls_to("usergroups.users.list", ok_only=False)) == 1
    # …and while it is failing, a second ask is answered at once, without Slack.
    with pytest.raises(LookupFailed):
        gateway.members_of("S1")
    assert len(fake.calls_to("usergroups.users.list", ok_only=False)) == 1


def test_members_of_honours_a_long_retry_after(
    gateway: SlackGateway, fake: FakeSlack, ticker: Ticker
) -> None:
    fake.fail("usergroups.users.list", status=429, retry_after=30)
    with pytest.raises(LookupFailed):
        gateway.members_of("S1")
    assert ticker.slept == []  # too long to wait for inside a command
    ticker.now += 10
    with pytest.raises(LookupFailed):
        gateway.members_of("S1")
    assert len(fake.calls_to("usergroups.users.list", ok_only=False)) == 1
    ticker.now += 21
    fake.usergroups["S1"] = ["U1"]
    assert gateway.members_of("S1") == frozenset({"U1"})


def test_user_timezone(gateway: SlackGateway, fake: FakeSlack) -> None:
    fake.user_zones["U1"] = "Europe/Berlin"
    assert gateway.user_timezone("U1") == "Europe/Berlin"
    assert gateway.user_timezone("U1") == "Europe/Berlin"
    assert fake.counts() == {"users.info": 1}
    fake.fail("users.info", error="user_not_found")
    assert gateway.user_timezone("U2") is None
