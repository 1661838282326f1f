"""Who may change things: user-group lookups only for changes, a hanging Slack, STATUSBOT_EDITORS.

Through the real transports: signed HTTP to /slack/events against the fake
Slack (which counts calls per method and can hang), and the `statusbot`
program in a subprocess.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bot.settings import Settings, SettingsError
from bot.slack.gateway import LOOKUP_TIMEOUT
from commands import words
from commands.common import authorise
from commands.context import Context, Editors, NotAllowed
from commands.dispatch import changes
from storage.models import AuditEvent
from tests.conftest import T0, FakeClock
from tests.fake_slack import FakeSlack
from tests.helpers import Program
from tests.test_slack_http import Slack, slack_settings, start

LOOKUP = "usergroups.users.list"
READS = [
    ("/status", ""),
    ("/status", "help"),
    ("/incident", "help"),
    ("/incident", "list"),
    ("/incident", "show 1"),
    ("/maintenance", "list"),
    ("/maintenance", "show 2"),
    ("/maintenance", "help"),
    ("/component", "list"),
    ("/component", "help"),
    ("/component", "frobnicate"),  # no command at all: an error before any rights matter
]


@pytest.fixture
def guarded(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeSlack, tmp_path: Path
) -> Iterator[Slack]:
    """Editors: U0BOSS by id, and the members of S0ONCALL; answers wait up to 5 s."""
    fake.usergroups["S0ONCALL"] = ["U0MEMBER"]
    configured = slack_settings(settings, fake, tmp_path, editors=frozenset({"U0BOSS", "S0ONCALL"}))
    yield from start(configured, engine, clock, fake, deadline=5.0)


def seed(slack: Slack) -> None:
    """Incident #1 and maintenance #2, made by an editor listed by id (no lookup)."""
    assert "Added API" in slack.reply("/component", "add API", user="U0BOSS")
    assert "#1" in slack.reply("/incident", "open Errors --components API=major", user="U0BOSS")
    reply = slack.reply("/maintenance", "schedule Upgrade --start in 1h --end in 2h", user="U0BOSS")
    assert "#2" in reply


def test_reads_never_look_up_user_groups(guarded: Slack) -> None:
    slack = guarded
    seed(slack)
    assert slack.fake.calls_to(LOOKUP, ok_only=False) == []
    for command, text in READS:
        reply = slack.reply(command, text, user="U0RANDOM")
        assert "Sorry, <@U0RANDOM>" not in reply, (command, text)
    assert slack.fake.calls_to(LOOKUP, ok_only=False) == []
    # A change does ask, once, and is refused as a non-editor.
    assert "only the editors" in slack.reply("/component", "set API ok", user="U0RANDOM")
    assert len(slack.fake.calls_to(LOOKUP, ok_only=False)) == 1


def test_a_hanging_slack_refuses_a_change_quickly_and_says_why(guarded: Slack) -> None:
    slack = guarded
    seed(slack)
    before = slack.rows(skip=("audit_events",))
    slack.fake.hang(LOOKUP, times=5)
    started = time.monotonic()
    reply = slack.reply("/component", "set API ok", user="U0MEMBER")
    took = time.monotonic() - started
    assert "couldn't ask Slack" in reply
    assert "only the editors" not in reply
    assert took < LOOKUP_TIMEOUT + 1.5, took
    assert slack.rows(skip=("audit_events",)) == before
    with slack.runtime.factory() as session:
        denied = session.scalars(
            select(AuditEvent.action).where(AuditEvent.actor == "U0MEMBER")
        ).all()
    assert denied == ["denied.component.set"]
    asked = len(slack.fake.calls_to(LOOKUP, ok_only=False))
    # A read meanwhile is quick and asks Slack nothing…
    started = time.monotonic()
    assert "Errors" in slack.reply("/incident", "list", user="U0MEMBER")
    assert time.monotonic() - started < 1.0
    # …and a second change right away is refused at once: Slack is not asked again yet.
    started = time.monotonic()
    assert "couldn't ask Slack" in slack.reply("/component", "set API ok", user="U0MEMBER")
    assert time.monotonic() - started < 1.0
    assert len(slack.fake.calls_to(LOOKUP, ok_only=False)) == asked
    # An editor listed by id doesn't need Slack at all.
    assert "API is now Operational" in slack.reply("/component", "set API ok", user="U0BOSS")


def test_a_member_of_an_editor_group_may_change_and_the_answer_is_cached(guarded: Slack) -> None:
    slack = guarded
    seed(slack)
    assert "API is now Operational" in slack.reply("/component", "set API ok", user="U0MEMBER")
    assert "API is now Degraded" in slack.reply("/component", "set API slow", user="U0MEMBER")
    assert len(slack.fake.calls_to(LOOKUP)) == 1


@pytest.mark.parametrize(
    ("command", "text", "expected"),
    [
        *((c, t, False) for c, t in READS),
        ("/incident", "", False),  # the form: the modal listener checks it
        ("/incident", "open Errors", True),
        ("/incident", "RESOLVE 1", True),
        ("/maintenance", "start 2", True),
        ("/component", "add Web", True),
        ("/bogus", "add Web", False),
    ],
)
def test_which_commands_are_changes(command: str, text: str, expected: bool) -> None:
    assert changes(command, text) is expected


def test_an_unanswered_group_is_a_refusal_that_says_so() -> None:
    ctx = Context(
        actor="U0MEMBER",
        now=T0,
        tz=Settings().tz,
        page_tz=Settings().tz,
        editors=Editors(frozenset({"S0ONCALL"}), unanswered=frozenset({"S0ONCALL"})),
    )
    with pytest.raises(NotAllowed) as refused:
        authorise(ctx, action="component.set", target="API")
    assert refused.value.message.startswith("Sorry, <@U0MEMBER> may not component set right now")
    assert refused.value.message == words.SLACK_UNANSWERED.format(
        who="<@U0MEMBER>", action="component set"
    )


# --- STATUSBOT_EDITORS at start ---------------------------------------------------------


@pytest.mark.parametrize("value", [",", " , ,", ",,,"])
def test_an_editors_value_that_names_nobody_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match=r"STATUSBOT_EDITORS=.* names nobody"):
        Settings.from_env({"STATUSBOT_EDITORS": value})
    assert Settings.from_env({}).editors == frozenset()  # unset still means everyone


@pytest.fixture
def program(empty_db: tuple[Engine, str], tmp_path: Path) -> Program:
    prog = Program(empty_db[1], tmp_path, STATUSBOT_LOG_LEVEL="WARNING")
    assert prog("db", "upgrade").returncode == 0
    return prog


def test_the_program_refuses_an_editors_value_that_names_nobody(program: Program) -> None:
    done = program("run", "/status", env={"STATUSBOT_EDITORS": ","})
    assert done.returncode == 2
    assert "names nobody" in done.stderr
    assert "Traceback" not in done.stderr


def test_everyone_may_edit_is_a_warning_at_every_start(program: Program) -> None:
    for args in (("run", "/status"), ("shell",)):
        done = program(*args, stdin="/status\n")
        assert done.returncode == 0, done.stderr
        assert "WARNING" in done.stderr and "STATUSBOT_EDITORS is not set" in done.stderr
        quiet = program(*args, stdin="/status\n", env={"STATUSBOT_EDITORS": "U0BOSS"})
        assert "STATUSBOT_EDITORS" not in quiet.stderr


def test_the_demo_loads_as_the_system_whoever_the_editors_are(program: Program) -> None:
    done = program("demo", env={"STATUSBOT_EDITORS": "U0BOSS,S0ONCALL"})
    assert done.returncode == 0, done.stderr
    assert "Opened incident #1" in done.stdout
    assert "may not" not in done.stdout + done.stderr
