"""Postmortems (SPEC §12): a draft only editors see; published on the page, in the JSON and,
with --notify, to subscribers once; reverted off the page again."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import html5lib
from jsonschema import Draft202012Validator
from sqlalchemy import select

from bot.notify import run_pending
from bot.notify.email import email_sender
from bot.notify.webhook import WebhookSender
from bot.publish import Publisher
from bot.runtime import Runtime
from storage import subscribers as subscriber_store
from storage.models import AuditEvent
from tests.page_scan import count_in, files_with, subscriber_entries
from tests.smtp_sink import HOST, Sink, running
from tests.test_slack_http import Slack, guarded, slack, with_components  # noqa: F401 (fixtures)
from tests.test_webhooks import Receiver

FIELDS = json.loads((Path(__file__).parent / "data/statuspage_v2_fields.json").read_text())
POSTMORTEM_KEYS = [
    "postmortem_body",
    "postmortem_body_last_updated_at",
    "postmortem_published_at",
    "postmortem_ignored",
    "postmortem_notified_subscribers",
    "postmortem_notified_twitter",
]
TEXT = "## Root cause zqxpm\n\nA **bad** deploy. <script>alert(1)</script>"


def _page(bot: Slack) -> Path:
    assert bot.server.pages is not None and bot.server.pages.flush()
    return Path(bot.runtime.settings.page_dir)


def _incident_json(root: Path) -> dict[str, Any]:
    data = json.loads((root / "api/v2/incidents.json").read_text())
    found: dict[str, Any] = data["incidents"][0]
    return found


def test_a_postmortem_is_a_draft_until_published_and_can_be_reverted(
    with_components: Slack,  # noqa: F811
) -> None:
    bot = with_components
    bot.reply("/incident", "open Checkout errors --components API=major")
    bot.reply("/incident", "resolve 1")
    reply = bot.reply("/incident", f"postmortem 1 -- {TEXT}")
    assert "as a draft" in reply and "--publish" in reply
    assert "zqxpm" in bot.reply("/incident", "show 1") and "draft, not public" in bot.reply(
        "/incident", "show 1"
    )
    root = _page(bot)
    assert files_with(root, "zqxpm") == [] and files_with(root, "Postmortem") == []
    assert "postmortem_body" not in _incident_json(root)
    Publisher(bot.runtime).publish_all()
    assert files_with(root, "zqxpm") == []
    assert subscriber_entries(bot.runtime) == [
        ("fanout", "incident.opened"),
        ("fanout", "incident.resolved"),
    ]

    bot.runtime.clock.advance(hours=1)  # type: ignore[attr-defined]
    assert "Published the postmortem of #1" in bot.reply("/incident", "postmortem 1 --publish")
    root = _page(bot)
    # On the incident's page under its own heading, rendered safely, once.
    page = (root / "incidents/1.html").read_text()
    doc = html5lib.parse(page, namespaceHTMLElements=False)
    heading = doc.find(".//section[@class='pm']/h2")
    assert heading is not None and heading.text == "Postmortem"
    section = doc.find(".//section[@class='pm']")
    assert section is not None and section.find(".//strong").text == "bad"  # type: ignore[union-attr]
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert count_in(root, "incidents/1.html", "zqxpm") == 1
    # In the JSON under Statuspage's names, after the v2 keys, valid against the field list.
    incident = _incident_json(root)
    assert list(incident)[-6:] == POSTMORTEM_KEYS
    assert incident["postmortem_body"] == TEXT
    assert datetime.fromisoformat(incident["postmortem_published_at"]) == bot.runtime.clock()
    assert incident["postmortem_notified_subscribers"] is False
    schema = {"$defs": FIELDS["$defs"], "$ref": "#/$defs/incident"}
    assert list(Draft202012Validator(schema).iter_errors(incident)) == []
    assert count_in(root, "api/v2/incidents.json", "zqxpm") == 1
    # Exactly where it belongs: its page and the incidents' JSON, nowhere else.
    assert files_with(root, "zqxpm") == ["api/v2/incidents.json", "incidents/1.html"]
    # Not told without --notify.
    assert len(subscriber_entries(bot.runtime)) == 2
    assert "published already" in bot.reply("/incident", "postmortem 1 --publish")

    assert "Took the postmortem of #1 off" in bot.reply("/incident", "postmortem 1 --revert")
    root = _page(bot)
    assert files_with(root, "zqxpm") == []
    assert "not published" in bot.reply("/incident", "postmortem 1 --revert")
    with bot.runtime.factory() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.action.like("incident.postmortem%"))
        ).all()
    assert actions == [
        "incident.postmortem",
        "incident.postmortem_publish",
        "incident.postmortem_revert",
    ]


def test_notify_tells_subscribers_and_the_channel_once(with_components: Slack) -> None:  # noqa: F811
    bot = with_components
    bot.reply("/incident", "open Checkout errors")
    bot.reply("/incident", "resolve 1")
    bot.reply("/incident", f"postmortem 1 -- {TEXT}")
    reply = bot.reply("/incident", "postmortem 1 --publish --notify")
    assert "Subscribers are told" in reply
    assert "not told again" in bot.reply("/incident", "postmortem 1 --publish --notify")
    told = [e for e in subscriber_entries(bot.runtime) if e[1] == "postmortem.published"]
    assert told == [("fanout", "postmortem.published")]
    assert _incident_json(_page(bot))["postmortem_notified_subscribers"] is True
    replies = [
        c.params
        for c in bot.fake.wait_for("chat.postMessage", 3)
        if "Postmortem published" in str(c.params.get("text"))
    ]
    assert len(replies) == 1 and replies[0]["thread_ts"]


def test_bad_postmortem_commands_write_nothing(with_components: Slack) -> None:  # noqa: F811
    bot = with_components
    bot.reply("/incident", "open Checkout errors")
    bot.reply("/incident", "open Prep --draft")
    before = bot.rows()
    for text, says in (
        ("postmortem 1", "Write the postmortem"),
        ("postmortem 1 --publish", "has no postmortem yet"),
        ("postmortem 1 --revert", "has no postmortem yet"),
        ("postmortem 1 --notify", "--notify goes with --publish"),
        ("postmortem 1 --publish --revert", "not both"),
        ("postmortem 1 --publish -- text", "take no text"),
        ("postmortem 2 -- text", "is a draft"),
        ("postmortem 9 -- text", "There is no incident #9"),
    ):
        reply = bot.reply("/incident", text)
        assert says in reply and "/incident postmortem ID" in reply, (text, reply)
    assert bot.rows() == before


def test_non_editors_see_no_draft_postmortem_and_may_not_write_one(guarded: Slack) -> None:  # noqa: F811
    bot = guarded
    bot.reply("/incident", "open Checkout errors", user="U0BOSS")
    bot.reply("/incident", f"postmortem 1 -- {TEXT}", user="U0BOSS")
    assert "zqxpm" not in bot.reply("/incident", "show 1", user="U0RANDOM")
    assert "zqxpm" in bot.reply("/incident", "show 1", user="U0BOSS")
    before = bot.rows(skip=("audit_events",))
    for text in ("postmortem 1 -- mine", "postmortem 1 --publish", "postmortem 1 --revert"):
        assert "may not" in bot.reply("/incident", text, user="U0RANDOM")
    assert bot.rows(skip=("audit_events",)) == before
    bot.reply("/incident", "postmortem 1 --publish", user="U0BOSS")
    assert "zqxpm" in bot.reply("/incident", "show 1", user="U0RANDOM")  # public now


def test_subscribers_get_the_postmortem_by_email_and_webhook_once(runtime: Runtime) -> None:
    rt = runtime
    sink, receiver = Sink(), Receiver()
    try:
        with running(sink) as port:
            rt.settings = replace(
                rt.settings, smtp_url=f"smtp://{HOST}:{port}", mail_from="status@example.com"
            )
            with rt.factory.begin() as session:
                for kind, address in (("email", "ann@example.org"), ("webhook", "ops@example.org")):
                    subscriber_store.add(
                        session,
                        kind=kind,
                        email=address,
                        endpoint=receiver.url() if kind == "webhook" else None,
                        source="cli",
                        now=rt.clock(),
                        confirmed=True,
                    )
            for line in (
                "/incident open Checkout errors",
                "/incident resolve 1",
                f"/incident postmortem 1 -- {TEXT}",
            ):
                assert rt.run_line(line, user="U1").ok
            senders = [
                email_sender(rt),
                WebhookSender(
                    rt.factory,
                    page_url=rt.settings.page_url,
                    tz=rt.settings.tz,
                    allow_private=True,
                    clock=lambda: datetime.now(UTC),
                ),
            ]
            run_pending(rt, senders)
            assert len(sink.to("ann@example.org")) == 2 and len(receiver.got) == 2
            assert all(b"zqxpm" not in body for _, _, body in receiver.got)  # a draft
            for line in ("/incident postmortem 1 --publish --notify",) * 2:
                assert rt.run_line(line, user="U1").ok
            run_pending(rt, senders)
            mails = sink.to("ann@example.org")
            assert len(mails) == 3
            assert "Postmortem published" in mails[-1]["Subject"]
            body = mails[-1].get_body(preferencelist=("plain",))
            assert body is not None and "zqxpm" in str(body.get_content())  # type: ignore[attr-defined]
            assert len(receiver.got) == 3
            hook = json.loads(receiver.got[-1][2])["incident"]
            assert hook["postmortem_body"] == TEXT and hook["postmortem_notified_subscribers"]
    finally:
        receiver.close()
