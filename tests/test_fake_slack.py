"""The fake Slack answers like Slack, so the transport tests mean something."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fake_slack import FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


def test_post_then_update_keeps_the_ts(fake: FakeSlack) -> None:
    client = WebClient(token="xoxb-test", base_url=fake.api_url)
    posted = client.chat_postMessage(channel="C1", text="hello")
    assert posted["ok"] and posted["ts"]
    updated = client.chat_update(channel="C1", ts=posted["ts"], text="edited")
    assert updated["ts"] == posted["ts"]
    assert fake.counts() == {"chat.postMessage": 1, "chat.update": 1}
    assert fake.calls_to("chat.update")[0].params["text"] == "edited"


def test_injected_failures(fake: FakeSlack) -> None:
    client = WebClient(token="xoxb-test", base_url=fake.api_url)
    fake.fail("chat.postMessage", status=429, retry_after=3)
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="C1", text="x")
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "3"
    fake.fail("chat.postMessage", error="channel_not_found")
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C1", text="x")
    assert client.chat_postMessage(channel="C1", text="x")["ok"]


def test_usergroups(fake: FakeSlack) -> None:
    fake.usergroups["S1"] = ["U1", "U2"]
    client = WebClient(token="xoxb-test", base_url=fake.api_url)
    assert client.usergroups_users_list(usergroup="S1")["users"] == ["U1", "U2"]
