"""Socket Mode (SLACK_APP_TOKEN): Slack's requests over a websocket instead of HTTP.

statusbot asks the fake Web API for a connection (`apps.connections.open`), connects
to the fake Socket Mode end on localhost, and answers the envelopes it is sent the
way it answers signed HTTP requests: the same commands, replies and announcements.
Runs on SQLite, and on PostgreSQL too when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bot.runtime import Runtime
from bot.serve import Server, build
from bot.settings import Settings
from storage.models import Incident
from tests.conftest import FakeClock
from tests.fake_slack import FakeSlack
from tests.fake_socket_mode import FakeSocketMode
from tests.helpers import slash_command


@pytest.fixture
def socket_mode() -> Iterator[FakeSocketMode]:
    end = FakeSocketMode().start()
    yield end
    end.stop()


@pytest.fixture
def fake(socket_mode: FakeSocketMode) -> Iterator[FakeSlack]:
    server = FakeSlack(socket_mode_url=socket_mode.url).start()
    yield server
    server.stop()


@pytest.fixture
def server(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeSlack, tmp_path: Path
) -> Iterator[Server]:
    configured = dataclasses.replace(
        settings,
        slack_bot_token="xoxb-test",
        slack_app_token="xapp-1-A0APP-test",
        slack_signing_secret=None,  # Socket Mode needs none: the websocket is authenticated
        slack_api_url=fake.api_url,
        page_dir=tmp_path / "public",
    )
    running = build(configured, runtime=Runtime(configured, engine=engine, clock=clock))
    try:
        yield running
    finally:
        running.stop()


def command(text: str, *, command: str = "/incident", user: str = "U1") -> dict[str, str]:
    return slash_command(
        command, text, user=user, response_url="https://hooks.slack.invalid/commands/1"
    )


def test_slash_commands_are_answered_over_the_websocket(
    server: Server, socket_mode: FakeSocketMode, fake: FakeSlack
) -> None:
    assert server.web.slack is None  # no HTTP endpoint for Slack in Socket Mode
    socket_mode.wait_connected()
    assert fake.calls_to("apps.connections.open")

    opened = socket_mode.wait_ack(
        socket_mode.send(
            "slash_commands", command("open API errors --impact major -- Requests fail.")
        )
    )
    reply = opened["payload"]
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith("Opened incident #1")
    with server.runtime.factory() as session:
        (incident,) = session.scalars(select(Incident)).all()
        assert (incident.number, incident.title, incident.impact) == (1, "API errors", "major")

    # The announcement goes out through the Web API, as with HTTP.
    (announcement,) = fake.wait_for("chat.postMessage")
    assert announcement.params["channel"] == "C0INCIDENTS"
    assert "API errors" in str(announcement.params["text"])

    status = socket_mode.wait_ack(
        socket_mode.send("slash_commands", command("", command="/status"))
    )
    assert "API errors" in status["payload"]["text"]

    # Bad input: a clear reply with the usage, nothing written.
    refused = socket_mode.wait_ack(
        socket_mode.send("slash_commands", command("update 99 -- Nothing here."))
    )
    text = refused["payload"]["text"]
    assert "There is no incident #99" in text and "Usage:" in text
    with server.runtime.factory() as session:
        assert len(session.scalars(select(Incident)).all()) == 1


def test_declare_form_opens_from_a_command_over_the_websocket(
    server: Server, socket_mode: FakeSocketMode, fake: FakeSlack
) -> None:
    socket_mode.wait_connected()
    ack = socket_mode.wait_ack(socket_mode.send("slash_commands", command("")))
    assert not ack.get("payload")  # acknowledged at once, with nothing to show
    (opened,) = fake.wait_for("views.open")
    assert opened.params["trigger_id"] == "1337.42.abcdef"
    assert "Declare incident" in str(opened.params["view"])
