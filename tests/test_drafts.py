"""Drafts (SPEC §12): in Slack, marked DRAFT; nothing of them public until published."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from bot.publish import Publisher
from renderers import slack_modals as ui
from storage.models import AuditEvent, StatusChange
from tests.page_scan import count_in, files_with, subscriber_entries
from tests.test_slack_http import (  # noqa: F401 (fixtures)
    Slack,
    code_of,
    guarded,
    slack,
    with_components,
)

TITLE = "Database failover zqxdrafttitle"
BODY = "Failing over to the replica zqxdraftbody"


def _page(bot: Slack) -> Path:
    assert bot.server.pages is not None and bot.server.pages.flush()
    return Path(bot.runtime.settings.page_dir)


def _nowhere_public(bot: Slack, *texts: str) -> None:
    """None of `texts` in any file, as published incrementally and from scratch."""
    root = _page(bot)
    for text in texts:
        assert files_with(root, text) == [], text
    Publisher(bot.runtime).publish_all()
    for text in texts:
        assert files_with(root, text) == [], text


def _api(root: Path) -> str:
    components = json.loads((root / "api/v2/components.json").read_text())["components"]
    return next(c["status"] for c in components if c["name"] == "API")


def test_a_draft_is_in_slack_only_until_published(with_components: Slack) -> None:  # noqa: F811
    bot = with_components
    bot.reply("/subscribers", "add ops@example.com")
    reply = bot.reply("/incident", f"open {TITLE} --draft --components API=major -- {BODY}")
    assert "Drafted incident #1" in reply and "publish 1" in reply
    # Announced in the channel, clearly a draft, with its pending states.
    posted = bot.fake.wait_for("chat.postMessage", 1)[0].params
    blocks = json.dumps(posted["blocks"])
    assert "DRAFT" in posted["text"] and "DRAFT" in blocks
    assert "not on the status page" in blocks and "Major Outage" in blocks
    # Nothing of it public: components, page, feeds, JSON, calendar, badge; no fan-out.
    incident = bot.incident(1)
    assert incident.draft and incident.affected[0].component.status == "operational"
    assert subscriber_entries(bot.runtime) == []
    root = _page(bot)
    assert _api(root) == "operational"
    assert json.loads((root / "api/v2/incidents.json").read_text())["incidents"] == []
    status = json.loads((root / "api/v2/status.json").read_text())["status"]
    assert status["indicator"] == "none"
    assert not (root / "incidents/1.html").exists()
    _nowhere_public(bot, "zqxdrafttitle", "zqxdraftbody")
    # Editors see it listed and shown, marked.
    listed = bot.reply("/incident", "list")
    assert "Drafts" in listed and "zqxdrafttitle" in listed
    shown = bot.reply("/incident", "show 1")
    assert "DRAFT" in shown and "Major Outage" in shown and "status.example.com" not in shown
    # Numbers stay one sequence.
    assert "Opened incident #2" in bot.reply("/incident", "open Something else")

    bot.runtime.clock.advance(hours=2)  # type: ignore[attr-defined]
    published_at = bot.runtime.clock()
    reply = bot.reply("/incident", "publish 1 -- We are failing over zqxpublic.")
    assert "Published #1" in reply
    incident = bot.incident(1)
    assert not incident.draft and incident.created_at == published_at
    assert incident.started_at == published_at
    assert incident.affected[0].component.status == "major_outage"
    opened = [e for e in subscriber_entries(bot.runtime) if e == ("fanout", "incident.opened")]
    assert len(opened) == 2  # #2 when it opened, #1 when it was published; once each
    root = _page(bot)
    assert _api(root) == "major_outage"
    data = json.loads((root / "api/v2/incidents.json").read_text())
    first = next(i for i in data["incidents"] if i["name"] == TITLE)
    assert datetime.fromisoformat(first["created_at"]) == published_at
    assert datetime.fromisoformat(first["started_at"]) == published_at
    assert [u["body"] for u in first["incident_updates"]] == ["We are failing over zqxpublic."]
    assert count_in(root, "incidents/1.html", "zqxpublic") == 1
    assert count_in(root, "api/v2/incidents.json", "zqxpublic") == 1
    # The draft's first message was replaced by the publication's.
    assert files_with(root, "zqxdraftbody") == []
    # Slack: the announcement lost its DRAFT marker; the opening went to its thread.
    edits = bot.fake.wait_for("chat.update", 1)
    assert "DRAFT" not in edits[-1].params["text"]
    with bot.runtime.factory() as session:
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert "incident.draft" in actions and "incident.publish" in actions


def test_publish_without_a_message_keeps_the_drafts_and_uptime_counts_from_then(
    with_components: Slack,  # noqa: F811
) -> None:
    bot = with_components
    bot.reply("/incident", f"open {TITLE} --draft --components API=partial -- {BODY}")
    bot.runtime.clock.advance(hours=1)  # type: ignore[attr-defined]
    assert "Published #1" in bot.reply("/incident", "publish 1")
    root = _page(bot)
    assert count_in(root, "incidents/1.html", "zqxdraftbody") == 1
    assert _api(root) == "partial_outage"
    # The component's history (what uptime is computed from) starts at publication.
    with bot.runtime.factory() as session:
        history = session.execute(select(StatusChange.at, StatusChange.status)).all()
    assert history == [(bot.runtime.clock(), "partial_outage")]
    bot.reply("/incident", "resolve 1")
    summary = json.loads((_page(bot) / "api/v2/summary.json").read_text())
    assert summary["status"]["indicator"] == "none"


def test_discard_drops_a_draft_and_says_so(with_components: Slack) -> None:  # noqa: F811
    bot = with_components
    bot.reply("/incident", f"open {TITLE} --draft --components API=major -- {BODY}")
    bot.fake.wait_for("chat.postMessage", 1)
    assert "Discarded draft #1" in bot.reply("/incident", "discard 1")
    edit = bot.fake.wait_for("chat.update", 1)[0].params
    assert "Discarded" in edit["text"]
    assert "Drafts" not in bot.reply("/incident", "list")
    assert "discarded" in bot.reply("/incident", "show 1")
    assert "discarded" in bot.reply("/incident", "publish 1")
    assert bot.incident(1).affected[0].component.status == "operational"
    _nowhere_public(bot, "zqxdrafttitle", "zqxdraftbody")
    with bot.runtime.factory() as session:
        audit = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "incident.discard")
        ).one()
    assert audit.target == "#1" and audit.after is not None and audit.after["discarded"]
    assert "Opened incident #2" in bot.reply("/incident", "open Next")


def test_what_a_draft_can_not_do_is_refused_and_writes_nothing(
    with_components: Slack,  # noqa: F811
) -> None:
    bot = with_components
    bot.reply("/incident", f"open {TITLE} --draft")
    bot.reply("/incident", "open Public one")
    before = bot.rows()
    for text, says in (
        ("update 1 -- hi", "is a draft: publish it first"),
        ("resolve 1", "is a draft: publish it first"),
        ("publish 2", "is not a draft"),
        ("discard 2", "is not a draft"),
        ("discard 1 -- why", "takes no message"),
        ("open Backfilled --draft --at 1h ago", "A draft has no --at"),
        ("publish", "Which one?"),
    ):
        reply = bot.reply("/incident", text)
        assert says in reply, (text, reply)
    assert bot.rows() == before
    # Notes and title fixes are fine on a draft.
    assert "Noted on #1" in bot.reply("/incident", "note 1 -- prepping")
    assert "Renamed #1" in bot.reply("/incident", "edit 1 --title Failover")


def test_the_declare_form_can_save_a_draft(with_components: Slack) -> None:  # noqa: F811
    bot = with_components
    bot.command("/incident")
    view = bot.wait_view()
    assert ui.DRAFT in {b.get("block_id") for b in view["blocks"]}
    api = code_of(bot, "API")
    answer = bot.submit(
        view,
        {
            ui.TITLE: TITLE,
            ui.COMPONENT + api: "major_outage",
            ui.MESSAGE: BODY,
            ui.DRAFT: [ui.DRAFT_ON],
        },
    )
    assert answer.status == 200 and answer.body == b""
    assert "Drafted incident #1" in bot.wait_response()
    incident = bot.incident(1)
    assert incident.draft and incident.draft_components
    assert incident.affected[0].component.status == "operational"
    _nowhere_public(bot, "zqxdrafttitle", "zqxdraftbody")


def test_drafts_are_for_editors(guarded: Slack) -> None:  # noqa: F811
    bot = guarded
    bot.reply("/component", "add API", user="U0BOSS")
    bot.reply("/incident", f"open {TITLE} --draft", user="U0BOSS")
    # A read asks Slack nothing: a group's member is known once a change looked them up.
    assert "zqxdrafttitle" not in bot.reply("/incident", "list", user="U0MEMBER")
    assert "Noted on #1" in bot.reply("/incident", "note 1 -- on it", user="U0MEMBER")
    assert "zqxdrafttitle" in bot.reply("/incident", "list", user="U0MEMBER")
    assert "zqxdrafttitle" not in bot.reply("/incident", "list", user="U0RANDOM")
    assert "is a draft" in bot.reply("/incident", "show 1", user="U0RANDOM")
    before = bot.rows(skip=("audit_events",))
    for text in ("open Sneaky --draft", "publish 1", "discard 1"):
        reply = bot.reply("/incident", text, user="U0RANDOM")
        assert "may not" in reply, reply
    assert bot.rows(skip=("audit_events",)) == before
    with bot.runtime.factory() as session:
        denied = session.scalars(
            select(AuditEvent.action).where(AuditEvent.actor == "U0RANDOM")
        ).all()
    assert denied == ["denied.incident.open", "denied.incident.publish", "denied.incident.discard"]
