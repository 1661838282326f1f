"""Bad input of every kind: one clear reply with the right usage, and nothing written."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from bot.runtime import Runtime
from bot.settings import Settings
from commands.context import Editors
from tests.conftest import FakeClock
from tests.helpers import dump


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    for line in [
        "/component add API",
        '/component add "Transactional emails" --group "Email Processing"',
        '/component add "Newsletter emails" --group "Email Processing"',
        "/incident open Open incident --components API=partial -- Looking.",
        "/incident open Old incident",
        "/incident resolve 2",
        "/maintenance schedule Upgrade --start tomorrow 22:00 --end tomorrow 23:00 "
        "--components API",
    ]:
        result = runtime.run_line(line, user="U1")
        assert result.ok, (line, result.reply)
    return runtime


LONG = "x" * 3001

CASES = [
    # (line, words the reply must contain)
    ("/incident frobnicate", "has no 'frobnicate'"),
    ("/incident open", "title"),
    ("/incident open -- only a message", "title"),
    ("/incident open Title --impcat major", "Did you mean --impact"),
    ("/incident open Title --impact huge", "not a valid impact"),
    ("/incident open Title --status resolved", "not a valid status"),
    ("/incident open Title --components Nope=major", "no component 'Nope'"),
    ("/incident open Title --components Newsletter=major", "Newsletter emails"),
    ("/incident open Title --components emails=major", "could be"),
    ("/incident open Title --components Email Processing=major", "is a group"),
    ("/incident open Title --components API=sideways", "not a component state"),
    ("/incident open Title --components API", "needs a state"),
    ("/incident open Title --components API=maintenance", "schedule a maintenance"),
    ("/incident open Title --at in 2h", "in the future"),
    ("/incident open Title --at tomorow 9am", "can't read"),
    ("/incident open Title --at 2026-03-08 02:30 America/New_York", "skipped when the clocks"),
    ("/incident open Title --at", "needs a value"),
    ("/incident open Title --impact minor --impact major", "only once"),
    (f"/incident open Title -- {LONG}", "3,000"),
    ("/incident open " + "T" * 201, "200"),
    ("/incident update 1", "Write the update"),
    ("/incident update 99 -- hello", "no incident #99"),
    ("/incident update abc -- hello", "not an incident number"),
    ("/incident update 2 -- hello", "reopen"),
    ("/incident update 3 -- hello", "is a maintenance"),
    ("/incident update 1 --status sideways -- hello", "not a valid incident status"),
    ("/incident update 1 extra words -- hello", "Unexpected"),
    ("/incident resolve 2", "already resolved"),
    ("/incident resolve 1 --at 2020-01-01 00:00", "before that"),
    ("/incident reopen 1", "not resolved"),
    ("/incident edit 1", "Say what to edit"),
    ("/incident edit 1 --update 7 -- text", "no update 7"),
    ("/incident show", "Give its number"),
    ("/maintenance schedule Later", "--start"),
    ("/maintenance schedule X --start tomorrow 23:00 --end tomorrow 22:00", "must be after"),
    ("/maintenance schedule X --start 2h ago --end 1h ago", "ended"),
    ("/maintenance schedule X --start in 1h --end in 2h --components Nope", "no component"),
    ("/maintenance complete 3", "can't be completed"),
    ("/maintenance start 1", "is an incident"),
    ("/maintenance update 3", "Write the update"),
    ("/maintenance update 3 --status completed -- done", "can't be"),
    ("/component set API", "new state"),
    ("/component set Nope major", "no component"),
    ("/component set API partial", "already Partial Outage"),
    ("/component add API", "already a component"),
    ('/component add "A/B"', "can't contain"),
    ("/component add X --group API", "is a component"),
    ("/component add X --start-date someday", "date"),
    ("/component add X --position 0", "whole number from 1"),
    ("/component add X --position two", "whole number from 1"),
    ("/component rename API", "--to"),
    ("/component rename API --to Newsletter emails", "already a component"),
    ("/component remove Nope", "no component"),
    ("/status now please", "takes no arguments"),
    ("/bogus", "no /bogus"),
    ("incident open no slash", "Start with a slash"),
]


@pytest.mark.parametrize(("line", "expected"), CASES, ids=[c[0][:60] for c in CASES])
def test_bad_input_is_refused_and_nothing_is_written(
    rt: Runtime, engine: Engine, line: str, expected: str
) -> None:
    before = dump(engine)
    result = rt.run_line(line, user="U1")
    assert not result.ok
    assert not result.changed
    assert expected.lower() in result.reply.lower(), result.reply
    assert "Traceback" not in result.reply
    if not line.startswith(("/bogus", "incident")) and "/status" not in line:
        assert "Usage:" in result.reply, result.reply
    assert dump(engine) == before


def test_a_non_editor_is_refused_audited_and_nothing_else_written(
    engine: Engine, clock: FakeClock
) -> None:
    rt = Runtime(Settings(editors=frozenset({"U1", "S0ONCALL"})), engine=engine, clock=clock)
    assert rt.run_line("/component add API", user="U1").ok
    before = dump(engine, skip=("audit_events",))
    audit_before = len(dump(engine)["audit_events"])
    result = rt.run_line("/component set API major", user="U2")
    assert not result.ok
    assert "may not" in result.reply
    assert dump(engine, skip=("audit_events",)) == before
    audit = dump(engine)["audit_events"]
    assert len(audit) == audit_before + 1
    assert audit[-1][2:5] == ("U2", "denied.component.set", "component")
    # Reading is open to everyone.
    assert rt.run_line("/component list", user="U2").ok
    assert rt.run_line("/status", user="U2").ok
    assert rt.run_line("/incident help", user="U2").ok


def test_user_group_members_are_editors(engine: Engine, clock: FakeClock) -> None:
    groups = {"S0ONCALL": frozenset({"U7"})}
    rt = Runtime(
        Settings(editors=frozenset({"S0ONCALL"})),
        engine=engine,
        clock=clock,
        members_of=lambda gid: groups.get(gid, frozenset()),
    )
    assert rt.run_line("/component add API", user="U7").ok
    assert not rt.run_line("/component add Web", user="U8").ok
    assert Editors(frozenset({"S0ONCALL"})).allows("U7") is False  # no resolver: not a member


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    command=st.sampled_from(["/incident", "/maintenance", "/component", "/status"]),
    text=st.lists(
        st.sampled_from(
            [
                *"abc 12#-=,/“”\"'&;<>@|",
                "open",
                "update",
                "resolve",
                "schedule",
                "set",
                "add",
                "--at",
                "--components",
                "--start",
                "API",
                " -- ",
                "API=major",
                "1",
                "now",
                "in 2h",
            ]
        ),
        max_size=15,
    ).map("".join),
)
def test_any_text_gets_a_result_never_an_exception(rt: Runtime, command: str, text: str) -> None:
    result = rt.run_line(f"{command} {text}", user="U1")
    assert isinstance(result.reply, str) and result.reply
