"""`/subscribers` (SPEC §9 "From Slack and the CLI"): through `statusbot run` and signed
slash commands to the real HTTP server, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from storage.models import AuditEvent, OutboxEntry, Subscriber
from tests.helpers import Program, dump
from tests.test_slack_http import Slack, guarded, slack  # noqa: F401 (fixtures)


@pytest.fixture
def program(empty_db: tuple[Engine, str], tmp_path: Path) -> Program:
    # Webhooks to this machine, as a private deployment may: sign-up then checks the
    # URL's form only and looks no name up (no test may reach a DNS server).
    prog = Program(empty_db[1], tmp_path, STATUSBOT_WEBHOOK_ALLOW_PRIVATE="1")
    done = prog("db", "upgrade")
    assert done.returncode == 0, done.stderr
    return prog


@pytest.fixture
def db(empty_db: tuple[Engine, str], program: Program) -> Engine:
    """The program's database, migrated."""
    return empty_db[0]


def subscribers(engine: Engine) -> list[Subscriber]:
    with engine.connect() as conn:
        return list(conn.execute(select(Subscriber).order_by(Subscriber.id)))  # type: ignore[arg-type]


def confirmations(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(OutboxEntry.kind, OutboxEntry.channel, OutboxEntry.event).where(
                OutboxEntry.event == "subscriber.confirm"
            )
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_add_confirms_lists_shows_counts_and_removes(program: Program, db: Engine) -> None:
    program.run("/component add API")
    added = program.run("/subscribers add Ann@Example.COM --components api")
    assert "confirmation email is on its way" in added
    (sub,) = subscribers(db)
    assert sub.email == "Ann@example.com" and sub.confirmed_at is None
    assert sub.confirmation_sent_at is not None and sub.source == "slack"
    assert confirmations(db) == [("email", sub.code, "subscriber.confirm")]
    # The same address again: said so, nothing written.
    before = dump(db)
    again = program.run("/subscribers add ann@example.com")
    assert "already subscribed" in again and sub.code in again
    assert dump(db) == before
    listing = program.run("/subscribers list --components API")
    assert sub.code in listing and "waiting for confirmation" in listing
    assert "0 confirmed subscribers" in program.run("/subscribers count")
    hook = program.run("/subscribers add-webhook http://127.0.0.1:9/x --email ops@example.com")
    code = hook.split("(id ")[1].split(")")[0]
    shown = program.run(f"/subscribers show {code}")
    assert "Signing secret: `whsec_" in shown and "http://127.0.0.1:9/x" in shown
    assert len(confirmations(db)) == 2, "a webhook's address confirms too"
    assert "Removed" in program.run("/subscribers remove ann@example.com")
    assert "Removed" in program.run(f"/subscribers remove {code}")
    assert "No subscribers yet" in program.run("/subscribers list")
    with db.connect() as conn:
        actions = list(conn.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions[-5:] == [
        "subscriber.add_email",
        "subscriber.add_webhook",
        "subscriber.show_secret",
        "subscriber.remove",
        "subscriber.remove",
    ]


@pytest.mark.parametrize(
    ("line", "wanted"),
    [
        ("/subscribers add not-an-address", "is not an email address"),
        ("/subscribers add " + "a" * 250 + "@example.com", "the most is 254"),
        ("/subscribers add a@example.com --components Nope", "Nope"),
        ("/subscribers add-webhook ftp://x.example.com --email a@b.co", "starts with https://"),
        ("/subscribers add-webhook https://u:pw@x.example.com --email a@b.co", "password"),
        (
            "/subscribers add-webhook https://x.example.com/" + "p" * 2050 + " --email a@b.co",
            "2,048",
        ),
        ("/subscribers add-webhook https://x.example.com", "--email"),
        ("/subscribers remove nobody@example.com", "no email subscription"),
        ("/subscribers show zzzz", "no subscriber with id"),
        ("/subscribers frobnicate", "It takes: count, list"),
    ],
)
def test_bad_input_says_what_and_writes_nothing(
    program: Program, db: Engine, line: str, wanted: str
) -> None:
    before = dump(db)
    done = program("run", line, "--user", "U0IC")
    assert done.returncode == 1
    assert wanted in done.stderr and "Usage:" in done.stderr
    assert "Traceback" not in done.stderr
    assert dump(db) == before


def test_help_for_every_verb(program: Program) -> None:
    text = program.run("/subscribers help")
    for verb in ("count", "list", "show ID", "add EMAIL", "add-webhook URL", "remove EMAIL|ID"):
        assert f"/subscribers {verb}" in text


def test_slash_command_through_slack(slack: Slack) -> None:  # noqa: F811
    reply = slack.reply("/subscribers", "add <mailto:bo@example.com|bo@example.com>")
    assert "Added bo@example.com" in reply
    assert "bo@example.com" in slack.reply("/subscribers", "list")
    assert "0 confirmed subscribers" in slack.reply("/subscribers", "count")
    # Replies escape what people typed: the address is not echoed, and the character the
    # checker names is escaped for Slack.
    reply = slack.reply("/subscribers", "add <b>@example.com")
    assert "<b>" not in reply and "not an email address" in reply
    reply = slack.reply("/subscribers", "add a>b@example.com")
    assert "'>'" not in reply and "'&gt;'" in reply


def test_non_editors_are_refused_and_audited(guarded: Slack) -> None:  # noqa: F811
    assert "Added" in guarded.reply("/subscribers", "add c@example.com", user="U0BOSS")
    # A user-group editor may read: who asks matters for list, so the group is looked up.
    assert "c@example.com" in guarded.reply("/subscribers", "list", user="U0MEMBER")
    before = guarded.rows(skip=("audit_events",))
    for text in ("list", "count", "show x", "add d@example.com", "remove c@example.com"):
        reply = guarded.reply("/subscribers", text, user="U0RANDOM")
        assert "may not subscribers" in reply, text
        assert "c@example.com" not in reply
    assert "/subscribers add" in guarded.reply("/subscribers", "help", user="U0RANDOM")
    assert guarded.rows(skip=("audit_events",)) == before
    with guarded.runtime.engine.connect() as conn:
        denied = list(
            conn.scalars(
                select(AuditEvent.action).where(
                    AuditEvent.actor == "U0RANDOM", AuditEvent.action.like("denied.%")
                )
            )
        )
    assert len(denied) == 5


def test_cli_subscribers_commands(program: Program, db: Engine) -> None:
    program.run("/component add API")
    done = program("subscribers", "add", "e@example.com", "--components", "API")
    assert done.returncode == 0, done.stderr
    (sub,) = subscribers(db)
    assert sub.source == "cli"
    assert sub.code in program("subscribers", "list").stdout
    assert "0 confirmed" in program("subscribers", "count").stdout
    assert "Removed" in program("subscribers", "remove", sub.code).stdout
    with db.connect() as conn:
        actors = set(
            conn.scalars(select(AuditEvent.actor).where(AuditEvent.action.like("subscriber.%")))
        )
    assert actors == {"cli"}
    bad = program("subscribers", "add", "nope")
    assert bad.returncode == 1 and "not an email address" in bad.stderr
