"""Slack markup typed into a title or a name stays text in every reply (signed HTTP, fake Slack).

A person types `<https://evil.example|Sign in again>`, `<!subteam^S…>`, `<@U…>` or
`<!here>`; Slack sends it escaped, statusbot stores it as typed, and every reply
that shows it (/status, list and show, component list, an error that echoes it)
must escape it again, or it comes alive in someone else's Slack as a masked link
or a mention.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bot.runtime import Runtime
from bot.settings import Settings
from bot.shell import format_result
from bot.slack.listeners.services import guard
from commands.result import Notice, Result
from storage.escaping import escape, unescape
from tests.conftest import FakeClock
from tests.fake_slack import FakeSlack
from tests.test_slack_http import Slack, slack_settings, start

LINK = "<https://evil.example|Sign in again>"
MARKUPS = [LINK, "<!subteam^S0ADMINS>", "<@U0BOSS>", "<!here>"]


def as_slack_sends(text: str) -> str:
    """What a slash command's text is when a person types `text` literally."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def inert(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")


@pytest.fixture
def slack(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeSlack, tmp_path: Path
) -> Iterator[Slack]:
    yield from start(slack_settings(settings, fake, tmp_path), engine, clock, fake)


@pytest.mark.parametrize("markup", MARKUPS)
def test_markup_in_titles_and_names_is_inert_in_every_reply(slack: Slack, markup: str) -> None:
    typed = as_slack_sends(markup)
    # A component name can't hold '/', so the link goes into a title and a body only.
    name = "API" if "/" in markup else markup
    named = as_slack_sends(name)
    shown = inert(markup)
    replies = {
        "component add": slack.reply("/component", f"add {named}"),
        "incident open": slack.reply(
            "/incident", f"open {typed} --components {named}=major -- {typed}"
        ),
        "maintenance schedule": slack.reply(
            "/maintenance",
            f"schedule {typed} --start in 1h --end in 2h --components {named} -- {typed}",
        ),
        "/status": slack.reply("/status"),
        "incident list": slack.reply("/incident", "list"),
        "incident show": slack.reply("/incident", "show 1"),
        "maintenance list": slack.reply("/maintenance", "list"),
        "maintenance show": slack.reply("/maintenance", "show 2"),
        "component list": slack.reply("/component", "list"),
        "unknown component": slack.reply("/component", f"set x{typed} major"),
        "unknown verb": slack.reply("/incident", f"{typed} now"),
    }
    assert slack.incident(1).title == markup  # stored as typed; escaped only on the way out
    for what, reply in replies.items():
        assert markup not in reply, what
        if what in ("component add", "component list") and name == "API":
            continue
        # The unknown verb is the markup's first word.
        wanted = inert(markup.split(" ")[0]) if what == "unknown verb" else shown
        assert wanted in reply, (what, reply)


def test_replies_keep_statusbots_own_markup_and_escape_ampersands(slack: Slack) -> None:
    slack.reply("/incident", "open Fish &amp; chips &lt;3")
    shown = slack.reply("/incident", "show 1")
    assert "“Fish &amp; chips &lt;3”" in shown
    assert "<@U1>" in shown  # the author: a real mention, made by statusbot


def test_the_slack_guard_lets_only_our_mentions_and_channel_links_through() -> None:
    assert guard("by <@U1> in <#C1>") == "by <@U1> in <#C1>"
    assert guard(f"{LINK} <!here> a<b") == (
        "&lt;https://evil.example|Sign in again&gt; &lt;!here&gt; a&lt;b"
    )
    assert guard(escape(LINK)) == escape(LINK)  # escaped text stays as it is


def test_the_shell_shows_what_was_typed(runtime: Runtime) -> None:
    typed = "<!here> & @channel <@U1>"
    assert unescape(escape(typed)) == typed
    result = Result(
        reply=f"Opened “{escape(typed)}”",
        notices=(Notice(event="incident.opened", number=1, text=escape(typed)),),
    )
    out = format_result(result, runtime)
    assert out.startswith(f"Opened “{typed}”")
    assert out.endswith("\n" + typed)
