"""The "Declare incident" message shortcut (SPEC §12): the form, prefilled from a message,
with a link back that stays in Slack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.publish import Publisher
from renderers import slack_modals as ui
from storage.models import AuditEvent
from tests.page_scan import files_with
from tests.test_slack_http import Slack, guarded, slack, with_components  # noqa: F401 (fixtures)

TS = "1700000123.000456"
PERMALINK = "https://example.slack.com/archives/C0OPS/p1700000123000456"


def shortcut(bot: Slack, user: str = "U1", text: str = "", **changes: Any) -> dict[str, Any]:
    """A message_action payload as Slack sends it for a message in #ops."""
    return {
        "type": "message_action",
        "callback_id": "declare_from_message",
        "trigger_id": "1337.46.shortcut",
        "team": {"id": "T0TEAM", "domain": "example"},
        "user": {"id": user, "team_id": "T0TEAM"},
        "channel": {"id": "C0OPS", "name": "ops"},
        "message": {
            "type": "message",
            "user": "U0ALICE",
            "ts": TS,
            "text": text or "Checkout is throwing 500s zqxmsg\nSeen by &lt;3 customers so far",
        },
        "response_url": bot.response_url(),
        "token": "legacy",
        **changes,
    }


def test_the_shortcut_opens_the_declare_form_prefilled_with_a_link_back(
    with_components: Slack,  # noqa: F811
) -> None:
    bot = with_components
    answer = bot.interact(shortcut(bot))
    assert answer.status == 200
    view = bot.wait_view()
    assert bot.fake.calls_to("views.open")[0].params["trigger_id"] == "1337.46.shortcut"
    assert bot.fake.calls_to("chat.getPermalink")[0].params["message_ts"] == TS
    assert view["callback_id"] == ui.DECLARE
    inputs = {ui.block_of(b["block_id"]): b for b in view["blocks"] if b["type"] == "input"}
    assert inputs[ui.TITLE]["element"]["initial_value"] == "Checkout is throwing 500s zqxmsg"
    assert inputs[ui.MESSAGE]["element"]["initial_value"] == (
        "Checkout is throwing 500s zqxmsg\nSeen by <3 customers so far"
    )
    assert PERMALINK in json.dumps(view["blocks"])
    assert json.loads(view["private_metadata"])["source"] == PERMALINK

    assert bot.submit(view, {inputs[ui.MESSAGE]["block_id"]: "We are looking into it."}).body == b""
    assert "Opened incident #1" in bot.wait_response()
    assert bot.incident(1).source_link == PERMALINK
    # Shown in Slack: the announcement and /incident show.
    announcement = bot.fake.wait_for("chat.postMessage", 1)[0].params
    assert PERMALINK in json.dumps(announcement["blocks"])
    assert PERMALINK in bot.reply("/incident", "show 1")
    # Never on the page, in any file.
    assert bot.server.pages is not None and bot.server.pages.flush()
    root = Path(bot.runtime.settings.page_dir)
    assert (root / "incidents/1.html").exists()
    assert files_with(root, "p1700000123000456") == []
    Publisher(bot.runtime).publish_all()
    assert files_with(root, "p1700000123000456") == []
    assert files_with(root, "slack.com") == []


def test_without_slacks_permalink_the_link_is_built(with_components: Slack) -> None:  # noqa: F811
    bot = with_components
    bot.fake.fail("chat.getPermalink", status=200, error="message_not_found")
    bot.interact(shortcut(bot))
    view = bot.wait_view()
    assert json.loads(view["private_metadata"])["source"] == PERMALINK


@pytest.mark.parametrize(
    "source", ["javascript:alert(1)", "https://evil.example/archives/C1/p1", "x" * 50]
)
def test_a_forged_link_in_the_forms_metadata_is_not_kept(
    with_components: Slack,  # noqa: F811
    source: str,
) -> None:
    bot = with_components
    view = ui.declare_incident_modal(
        [], metadata=json.dumps({"response_url": "", "source": source})
    )
    assert bot.submit(view, {ui.TITLE: "Checkout errors"}).body == b""
    bot.fake.wait_for("chat.postMessage", 1)
    assert bot.incident(1).source_link is None


def test_a_non_editor_gets_no_form(guarded: Slack) -> None:  # noqa: F811
    bot = guarded
    bot.interact(shortcut(bot, user="U0RANDOM"))
    assert "may not incident open" in bot.wait_response()
    assert bot.opened_views() == []
    with bot.runtime.factory() as session:
        denied = session.scalars(
            select(AuditEvent.action).where(AuditEvent.actor == "U0RANDOM")
        ).all()
    assert denied == ["denied.incident.open"]


def test_the_manifest_has_the_shortcut_the_app_listens_for() -> None:
    yaml = pytest.importorskip("yaml")
    from bot.slack.listeners.shortcuts import DECLARE_FROM_MESSAGE

    manifest = yaml.safe_load((Path(__file__).resolve().parent.parent / "manifest.yml").read_text())
    (found,) = manifest["features"]["shortcuts"]
    assert found == {
        "name": "Declare incident",
        "type": "message",
        "callback_id": DECLARE_FROM_MESSAGE,
        "description": found["description"],
    }
    assert 0 < len(found["description"]) <= 150
