"""One set of text rules on every path: the shell, Slack's slash commands and forms, the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bot.runtime import Runtime
from bot.settings import Settings
from commands import textrules
from renderers import slack_modals as ui
from tests.conftest import FakeClock
from tests.fake_slack import FakeSlack
from tests.helpers import Program, dump, incident_of
from tests.test_slack_http import Slack, slack_settings, start

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
BIDI = "control character"  # as in "bidirectional control character"
NUL_SAYS = "control character U+0000"


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    for line in (
        "/component add API",
        '/component add "Transactional emails" --group "Email Processing"',
        "/incident open Checkout errors -- Looking.",
        "/maintenance schedule Upgrade --start tomorrow 22:00 --end tomorrow 23:00",
        "/incident open Old incident",
        "/incident resolve 3",
    ):
        result = runtime.run_line(line, user="U1")
        assert result.ok, (line, result.reply)
    return runtime


CASES = [
    # (the line typed, words its reply must contain)
    (f"/incident open Check{RLO}out", "The title contains a bidirectional control character"),
    ("/incident open Check\x00out", "The title contains the control character U+0000"),
    ("/incident open Fine -- we are\x00 on it", "The message contains the control character"),
    (f"/incident open Fine -- {RLO}looking", "The message contains a bidirectional"),
    ("/incident open Fine -- bell\x07", "U+0007"),
    ("/incident open Fine -- \u2066isolate\u2069", "U+2066"),
    ("/incident update 1 -- nearly\x1b[31m fixed", "U+001B"),
    (f"/incident resolve 1 -- done{RLO}", "bidirectional"),
    (f"/incident reopen 3 -- back{RLO}", "bidirectional"),
    (f"/incident edit 1 --title New{RLO}title", "The title contains a bidirectional"),
    ("/incident edit 1 --update 1 -- \x7f", "U+007F"),
    (f"/maintenance schedule Up{RLO}grade --start tomorrow 9am --end tomorrow 10am", "title"),
    (f"/maintenance update 2 -- soon{RLO}", "The message contains a bidirectional"),
    ("/component add AP\x00I2", "The name contains the control character U+0000"),
    (f"/component add Web --group Fr{RLO}ont", "The group name contains a bidirectional"),
    ("/component add Web --description Our\x00site", "The description contains the control"),
    (f"/component rename API --to A{RLO}PI", "The name contains a bidirectional"),
    ("/component rename API --to " + "x" * 3001, "keep the name to 200 characters"),
    ("/component rename API --to " + "x" * 201, "The name is 201 characters long"),
    ("/component add Web --group " + "g" * 3001, "keep the group name to 200 characters"),
    ("/component add Web --description " + "d" * 1001, "keep the description to 1,000"),
    ("/component add " + "w" * 201, "keep the name to 200 characters"),
    (f"/component set API major -- slow{RLO}", "The message contains a bidirectional"),
    ("/incident open " + "T" * 201, "keep the title to 200 characters"),
    ("/incident open Fine -- " + "m" * 3001, "to 3,000 characters (Slack's limit)"),
]


@pytest.mark.parametrize(("line", "says"), CASES, ids=[line[:40] for line, _ in CASES])
def test_every_command_path_refuses_the_same_text_and_writes_nothing(
    rt: Runtime, engine: Engine, line: str, says: str
) -> None:
    before = dump(engine)
    result = rt.run_line(line, user="U1")
    assert not result.ok, result.reply
    assert says in result.reply
    assert dump(engine) == before


def test_tabs_newlines_and_right_to_left_text_are_kept(rt: Runtime) -> None:
    """The rules refuse what can hide or reorder text, not scripts or line breaks."""
    body = "Line one\r\n\tindented\nשלום עולם \u200f(RLM) مرحبا"
    result = rt.run_line(f"/incident update 1 -- {body}", user="U1")
    assert result.ok, result.reply
    assert incident_of(rt, 1).updates[-1].body == body.replace("\r\n", "\n")


@pytest.mark.parametrize(
    ("kind", "text", "says"),
    [
        (textrules.TITLE, "a\u202ab", "U+202A"),
        (textrules.TITLE, "a\u202db", "U+202D"),
        (textrules.TITLE, "a\u2069b", "U+2069"),
        (textrules.NAME, "a\x85b", "U+0085"),  # C1 controls too
        (textrules.UNIT, "m\x00s", "U+0000"),
        (textrules.UNIT, "milliseconds-per-request", "keep the unit to 20 characters, e.g."),
    ],
)
def test_the_rules_name_the_character_or_the_limit(
    kind: textrules.TextKind, text: str, says: str
) -> None:
    wrong = textrules.problem(text, kind)
    assert wrong is not None and says in wrong


# --- the command line ----------------------------------------------------------------------


@pytest.fixture
def statusbot(empty_db: tuple[Engine, str], tmp_path: Path) -> Program:
    program = Program(empty_db[1], tmp_path)
    assert program("db", "upgrade").returncode == 0
    program.run("/component add API")
    return program


@pytest.mark.parametrize(
    "args",
    [
        ("run", "/component rename API --to " + "x" * 3001),
        ("run", f"/component rename API --to A{RLO}PI"),
        ("run", "/component add Web --group " + "g" * 3001),
        ("metrics", "add", f"Lat{RLO}ency", "--unit", "ms"),
        ("metrics", "add", "Latency", "--unit", f"m{RLO}s"),
        ("metrics", "add", "Latency", "--unit", "ms", "--description", "\x1b[2J"),
        ("metrics", "add", "L" * 201, "--unit", "ms"),
    ],
    ids=["rename-3001", "rename-bidi", "group-3001", "metric", "unit", "description", "name-201"],
)
def test_the_program_applies_the_same_rules(
    statusbot: Program, empty_db: tuple[Engine, str], args: tuple[str, ...]
) -> None:
    before = dump(empty_db[0])
    done = statusbot(*args)
    assert done.returncode in (1, 2), done.stdout
    assert "Traceback" not in done.stderr
    assert "characters long" in done.stderr or "control character" in done.stderr
    assert dump(empty_db[0]) == before


def test_a_nul_typed_into_the_shell_is_refused(
    statusbot: Program, empty_db: tuple[Engine, str]
) -> None:
    """NUL can't reach a program through its arguments, but it can through stdin."""
    before = dump(empty_db[0])
    done = statusbot("shell", stdin="/component rename API --to A\x00PI\n")
    assert NUL_SAYS in done.stdout + done.stderr
    assert dump(empty_db[0]) == before


# --- Slack: slash commands and forms, over signed HTTP ---------------------------------------


@pytest.fixture
def slack(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeSlack, tmp_path: Path
) -> Iterator[Slack]:
    for server in start(slack_settings(settings, fake, tmp_path), engine, clock, fake):
        assert "Added API" in server.reply("/component", "add API")
        yield server


def test_a_slash_command_gets_the_same_refusal(slack: Slack) -> None:
    before = slack.rows()
    reply = slack.reply("/component", "rename API --to " + "x" * 3001)
    assert "The name is 3,001 characters long: keep the name to 200 characters." in reply
    assert BIDI in slack.reply("/incident", f"open Check{RLO}out")
    assert slack.rows() == before


@pytest.mark.parametrize(
    ("answers", "block", "says"),
    [
        ({ui.TITLE: f"Check{RLO}out"}, ui.TITLE, "The title contains a bidirectional"),
        ({ui.TITLE: "Check\x00out"}, ui.TITLE, "The title contains the control character U+0000"),
        ({ui.TITLE: "Fine", ui.MESSAGE: f"on it{RLO}"}, ui.MESSAGE, "The message contains a bid"),
        ({ui.TITLE: "Fine", ui.MESSAGE: "a\x00b"}, ui.MESSAGE, "U+0000"),
        ({ui.TITLE: "x" * 201}, ui.TITLE, "keep the title to 200 characters"),
    ],
    ids=["title-bidi", "title-nul", "message-bidi", "message-nul", "title-201"],
)
def test_the_declare_form_refuses_the_same_text_and_writes_nothing(
    slack: Slack, answers: dict[str, str], block: str, says: str
) -> None:
    view = ui.declare_incident_modal([], metadata="{}")
    before = slack.rows()
    answer = slack.submit(view, answers)
    assert answer.status == 200
    data = answer.json()
    assert data["response_action"] == "errors"
    assert list(data["errors"]) == [block]
    assert says in data["errors"][block]
    assert slack.rows() == before


def test_the_update_form_refuses_a_bidi_override_in_the_message(slack: Slack) -> None:
    assert "Opened incident #1" in slack.reply("/incident", "open Checkout errors")
    from bot.slack.listeners.modals import incident_view

    view = ui.post_update_modal(
        incident_view(slack.incident(1)), [], metadata=json.dumps({"number": 1})
    )
    before = slack.rows()
    answer = slack.submit(view, {ui.STATUS: "identified", ui.MESSAGE: f"fixed{RLO}"})
    assert "bidirectional" in answer.json()["errors"][ui.MESSAGE]
    assert slack.rows() == before
