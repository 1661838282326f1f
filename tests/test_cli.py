"""Scenarios through the real program: `statusbot run`, `statusbot shell`, `demo`, `db upgrade`.

Each test drives the installed entry point in a subprocess against the test's
database (SQLite, and PostgreSQL when configured), then checks what is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from storage import incidents
from storage.models import AuditEvent, Component, Incident
from storage.rules import ComponentStatus
from tests.helpers import Program

SYDNEY = "Australia/Sydney"


@pytest.fixture
def program(empty_db: tuple[Engine, str], tmp_path: Path) -> Program:
    prog = Program(
        empty_db[1],
        tmp_path,
        STATUSBOT_NOTIFY_CHANNELS="C0INCIDENTS",
        STATUSBOT_SUPPORT_EMAIL="support@vero.example",
    )
    done = prog("db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert "Database is at revision" in done.stdout
    return prog


def test_replay_the_example_incident_through_run(
    program: Program, empty_db: tuple[Engine, str]
) -> None:
    program.run('/component add "Segment calcluation" --group "Backend Processing"')
    program.run(
        "/incident open Delays in segment calculation --at 2017-09-14 07:24 AEST "
        "--components Segment calcluation=degraded -- We are currently experiencing delays."
    )
    program.run(
        "/incident update 1 --status identified --at 2017-09-14 14:00 AEST "
        "-- Firstly, to clarify, this issue has not affected **every** segment."
    )
    out = program.run("/incident resolve #1 --at 2017-09-15 06:56 AEST -- Hi all, resolved.")
    assert "Resolved #1" in out
    assert "incident.resolved → #C0INCIDENTS" in out

    with Session(empty_db[0]) as s:
        inc = incidents.get(s, number=1)
        assert inc is not None
        assert [(u.status, u.display_at) for u in inc.updates] == [
            ("investigating", datetime(2017, 9, 13, 21, 24, tzinfo=UTC)),
            ("identified", datetime(2017, 9, 14, 4, 0, tzinfo=UTC)),
            ("resolved", datetime(2017, 9, 14, 20, 56, tzinfo=UTC)),
        ]
        assert inc.updates[1].body.endswith("**every** segment.")
        assert inc.impact == "minor"
        assert inc.started_at == datetime(2017, 9, 13, 21, 24, tzinfo=UTC)
        assert inc.resolved_at == datetime(2017, 9, 14, 20, 56, tzinfo=UTC)
        segment = s.scalars(select(Component)).one()
        assert segment.status == ComponentStatus.OPERATIONAL


def test_replay_a_maintenance_through_run(program: Program, empty_db: tuple[Engine, str]) -> None:
    program.run("/component add Database")
    out = program.run(
        "/maintenance schedule Database maintenance and capacity upgrades --start in 1h "
        "--end in 30h --components Database -- We will be performing a series of tasks."
    )
    assert "Scheduled maintenance #1" in out
    program.run("/maintenance start 1 -- Our maintenance work is starting now.")
    program.run("/maintenance update 1 --status verifying -- Running verification tests.")
    program.run("/maintenance complete 1 -- All work has now been completed.")
    with Session(empty_db[0]) as s:
        m = incidents.get(s, number=1)
        assert m is not None
        assert [u.status for u in m.updates] == [
            "scheduled",
            "in_progress",
            "verifying",
            "completed",
        ]
        assert m.updates[1].changes[0].new_status == "under_maintenance"
        assert m.updates[3].changes[0].new_status == "operational"
        assert s.scalars(select(Component.status)).one() == "operational"


def test_bad_input_exits_non_zero_with_the_reason_and_usage(program: Program) -> None:
    done = program("run", "/incident update 42 -- hello")
    assert done.returncode == 1
    assert "There is no incident #42" in done.stderr
    assert "Usage:" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_settings_exit_2_without_a_traceback(program: Program) -> None:
    done = program("run", "/status", env={"STATUSBOT_TIMEZONE": "Nowhere/Land"})
    assert done.returncode == 2
    assert "STATUSBOT_TIMEZONE" in done.stderr
    assert "Traceback" not in done.stderr


def test_shell_session(program: Program, empty_db: tuple[Engine, str]) -> None:
    script = "\n".join(
        [
            "/component add API",
            "/incident open API errors --components API=major -- Looking into it.",
            ".user U0OTHER",
            "/incident update 1 --status monitoring -- A fix is out.",
            "/incident resolve 1",
            "/incident bogus",
            "/status",
            ".quit",
        ]
    )
    done = program("shell", "--user", "U0ME", stdin=script)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "statusbot (U0ME)> /component add API" in out
    assert "Opened incident #1 “API errors”" in out
    assert "📣 incident.opened → #C0INCIDENTS" in out
    assert "API: Operational → Major Outage" in out
    assert "Now acting as U0OTHER." in out
    assert "/incident has no 'bogus'" in out
    assert "All Systems Operational" in out
    with Session(empty_db[0]) as s:
        actors = s.scalars(
            select(AuditEvent.actor)
            .where(AuditEvent.action.like("incident.%"))
            .order_by(AuditEvent.id)
        ).all()
    assert actors == ["U0ME", "U0OTHER", "U0OTHER"]


def test_shell_respects_editors(program: Program) -> None:
    script = "/component add API\n.user U0INTRUDER\n/component set API major\n/status\n"
    done = program("shell", "--user", "U0BOSS", stdin=script, env={"STATUSBOT_EDITORS": "U0BOSS"})
    assert "Added API" in done.stdout
    assert "may not component set" in done.stdout
    assert "All Systems Operational" in done.stdout


def test_demo_loads_the_example_page(program: Program, empty_db: tuple[Engine, str]) -> None:
    done = program("demo")
    assert done.returncode == 0, done.stderr
    assert "Opened incident #1" in done.stdout
    again = program("demo")
    assert again.returncode == 2 and "already has components" in again.stderr
    assert program("demo", "--reset").returncode == 0
    with Session(empty_db[0]) as s:
        names = s.scalars(select(Component.name).order_by(Component.id)).all()
        assert names == [
            "API",
            "Transactional emails",
            "Behavioral emails",
            "Newsletter emails",
            "Email reports and statistics",
            "Activity logs",
            "Imports and Exports",
            "Segment calcluation",
        ]
        found = s.scalars(select(Incident).order_by(Incident.number)).all()
        assert [(i.kind, i.status, len(i.updates)) for i in found] == [
            ("incident", "resolved", 3),
            ("maintenance", "completed", 4),
        ]
        # The example's last day is today; the incident resolved nine days before, at 06:56.
        resolved = found[0].resolved_at
        assert resolved is not None
        local = resolved.astimezone(ZoneInfo(SYDNEY))
        today = datetime.now(UTC).astimezone(local.tzinfo).date()
        assert (today - local.date()).days == 9
        assert (local.hour, local.minute) == (6, 56)
        assert "support@vero.example" in found[1].updates[0].body


def test_help_for_every_program_command(program: Program) -> None:
    for args in (
        ["--help"],
        ["run", "--help"],
        ["shell", "--help"],
        ["demo", "--help"],
        ["db", "--help"],
        ["api-key", "--help"],
        ["api-key", "create", "--help"],
        ["import", "statuspage", "--help"],
    ):
        done = program(*args)
        assert done.returncode == 0
        assert "usage: statusbot" in done.stdout


def test_commands_kept_in_their_own_modules_are_there_whenever_asked_for(
    program: Program,
) -> None:
    from bot.cli import _parser

    listed = program("--help").stdout
    wrong = program("nonsense")
    assert wrong.returncode == 2
    for name in ("subscribers", "api-key", "import"):
        assert name in listed and name in wrong.stderr  # every choice, as before
        assert _parser(name).parse_args([name, *ARGS[name]]).command == name
    # `statusbot render` parses its line without them (nor the modules behind them).
    assert _parser("render").parse_args(["render"]).command == "render"
    with pytest.raises(SystemExit):
        _parser("render").parse_args(["import", "statuspage"])


ARGS = {"subscribers": ["list"], "api-key": ["list"], "import": ["statuspage", "--from", "d"]}
