"""Internal notes (SPEC §12): in the announcement's thread and the audit log, nowhere public."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from bot.publish import Publisher
from renderers import slack_modals as ui
from storage.models import AuditEvent, IncidentNote
from tests.page_scan import files_with, page_files, subscriber_entries
from tests.test_slack_http import Slack, guarded, slack, with_components  # noqa: F401 (fixtures)

SECRET_NOTE = "Rolled back deploy 4512 zqxnote"


def test_a_note_goes_to_the_thread_marked_internal_and_nowhere_public(
    with_components: Slack,  # noqa: F811
) -> None:
    bot = with_components
    bot.reply("/subscribers", "add ops@example.com")
    assert "Opened incident #1" in bot.reply("/incident", "open Checkout errors -- Looking.")
    bot.fake.wait_for("chat.postMessage", 1)
    reply = bot.reply("/incident", f"note 1 -- {SECRET_NOTE} <!channel>")
    assert "Noted on #1" in reply and "internal" in reply
    posted = bot.fake.wait_for("chat.postMessage", 2)
    thread = posted[1].params
    announcement_ts = bot.fake.messages("C0INCIDENTS")[0].ts
    assert thread["thread_ts"] == announcement_ts
    blocks = json.dumps(thread["blocks"])
    assert "Internal note" in blocks and "not on the status page" in blocks
    assert SECRET_NOTE in blocks
    assert "<!channel>" not in blocks and "@channel" not in blocks  # no ping
    # The note edited nothing and was not sent to subscribers.
    assert bot.fake.calls_to("chat.update") == []
    assert ("fanout", "incident.note") not in subscriber_entries(bot.runtime)
    with bot.runtime.factory() as session:
        # Slack's markup arrives as text (commands/tokens.unslack), then stays text.
        assert session.scalars(select(IncidentNote.body)).all() == [SECRET_NOTE + " @channel"]
        audit = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "incident.note")
        ).one()
    assert audit.actor == "U1" and audit.target == "#1"
    assert audit.after is not None and audit.after["note"].startswith(SECRET_NOTE)
    # Published incrementally and from scratch: in no file of the page.
    assert bot.server.pages is not None and bot.server.pages.flush()
    root = Path(bot.runtime.settings.page_dir)
    assert "incidents/1.html" in page_files(root)
    assert files_with(root, "zqxnote") == []
    Publisher(bot.runtime).publish_all()
    assert files_with(root, "zqxnote") == []
    # /incident show, in Slack, has it.
    assert SECRET_NOTE in bot.reply("/incident", "show 1")


def test_the_add_note_button_opens_a_modal_that_adds_a_note(with_components: Slack) -> None:  # noqa: F811
    bot = with_components
    bot.reply("/incident", "open Checkout errors")
    bot.fake.wait_for("chat.postMessage", 1)
    announcement = bot.fake.calls_to("chat.postMessage")[0].params
    actions = [b for b in json.loads(json.dumps(announcement["blocks"])) if b["type"] == "actions"]
    assert "incident_note" in [e["action_id"] for e in actions[0]["elements"]]
    assert bot.button("incident_note", "1").status == 200
    view = bot.wait_view()
    assert view["callback_id"] == ui.NOTE
    # An empty note is an error on the field, and writes nothing.
    before = bot.rows()
    data = bot.submit(view, {ui.MESSAGE: ""}).json()
    assert data["response_action"] == "errors" and "note" in data["errors"][ui.MESSAGE]
    assert bot.rows() == before
    assert bot.submit(view, {ui.MESSAGE: "Paged the DB team."}).body == b""
    assert "Noted on #1" in bot.wait_response()
    with bot.runtime.factory() as session:
        assert session.scalars(select(IncidentNote.body)).all() == ["Paged the DB team."]


def test_bad_notes_are_refused_with_the_usage(with_components: Slack) -> None:  # noqa: F811
    bot = with_components
    bot.reply("/incident", "open Checkout errors")
    before = bot.rows()
    for text, says in (
        ("note 1", "Write the note after a lone --"),
        ("note -- hi", "Which one?"),
        ("note 9 -- hi", "There is no incident #9"),
        ("note 1 -- " + "x" * 3001, "3,000"),
    ):
        reply = bot.reply("/incident", text)
        assert says in reply and "/incident note ID -- TEXT" in reply, reply
    assert bot.rows() == before


def test_a_non_editor_may_not_add_a_note(guarded: Slack) -> None:  # noqa: F811
    bot = guarded
    bot.reply("/incident", "open Checkout errors", user="U0BOSS")
    before = bot.rows(skip=("audit_events",))
    assert "may not incident note" in bot.reply("/incident", "note 1 -- hi", user="U0RANDOM")
    bot.button("incident_note", "1", user="U0RANDOM")
    assert "may not incident note" in bot.wait_response()
    assert bot.opened_views() == []
    data = bot.submit(
        ui.note_modal(_view(bot, 1), metadata='{"number": 1}'),
        {ui.MESSAGE: "sneaky"},
        user="U0RANDOM",
    ).json()
    assert "may not incident note" in data["errors"][ui.MESSAGE]
    assert bot.rows(skip=("audit_events",)) == before
    with bot.runtime.factory() as session:
        denied = session.scalars(
            select(AuditEvent.action).where(AuditEvent.actor == "U0RANDOM")
        ).all()
    assert denied == ["denied.incident.note"] * 3


def _view(bot: Slack, number: int):  # type: ignore[no-untyped-def]
    from storage.snapshot import incident_view

    return incident_view(bot.incident(number))
