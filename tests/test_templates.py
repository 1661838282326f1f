"""Templates (SPEC §12): kept in the database, opened from, and picked in the declare form."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from renderers import slack_modals as ui
from storage.models import AuditEvent, Template
from tests.test_slack_http import (  # noqa: F401 (fixtures)
    Slack,
    code_of,
    guarded,
    slack,
    with_components,
)

ADD = (
    "add db-failover --title Database failover --status identified "
    "--components API=major,Newsletter emails=degraded -- We are failing over the database."
)


def test_add_list_show_remove(with_components: Slack) -> None:  # noqa: F811
    bot = with_components
    assert "No templates yet" in bot.reply("/template", "list")
    assert "Added template db-failover" in bot.reply("/template", ADD)
    assert "db-failover: “Database failover”" in bot.reply("/template", "list")
    shown = bot.reply("/template", "show DB-Failover")  # any case
    assert "Identified" in shown and "API=Major Outage" in shown
    assert "Newsletter emails=Degraded Performance" in shown
    assert "We are failing over the database." in shown
    assert "already" in bot.reply("/template", ADD)
    assert "Removed template db-failover" in bot.reply("/template", "remove db-failover")
    assert "No templates yet" in bot.reply("/template", "list")
    with bot.runtime.factory() as session:
        audit = session.scalars(
            select(AuditEvent.action).where(AuditEvent.action.like("template.%"))
        ).all()
    assert audit == ["template.add", "template.remove"]


def test_open_from_a_template_fills_what_it_says(with_components: Slack) -> None:  # noqa: F811
    bot = with_components
    bot.reply("/template", ADD)
    reply = bot.reply("/incident", "open --template db-failover")
    assert "Opened incident #1 “Database failover”: Identified" in reply
    incident = bot.incident(1)
    assert incident.status == "identified"
    assert incident.updates[0].body == "We are failing over the database."
    assert sorted((a.component.name, a.component.status) for a in incident.affected) == [
        ("API", "major_outage"),
        ("Newsletter emails", "degraded_performance"),
    ]
    # A title, components and MORE on top of the template.
    reply = bot.reply(
        "/incident",
        "open Replica lag --template db-failover --status investigating "
        "--components API=partial -- Reads may be stale.",
    )
    assert "Opened incident #2 “Replica lag”: Investigating" in reply
    second = bot.incident(2)
    assert second.updates[0].body == "We are failing over the database.\n\nReads may be stale."
    states = {c.component.name: c.new_status for c in second.updates[0].changes}
    assert states["API"] == "partial_outage"
    assert "There is no template nope" in bot.reply("/incident", "open --template nope")


def test_bad_templates_are_refused_and_write_nothing(with_components: Slack) -> None:  # noqa: F811
    bot = with_components
    before = bot.rows()
    for text, says in (
        ("add -- body", "one name"),
        ("add two words --title T", "one name"),
        ("add x", "--title"),
        ("add 'bad/name' --title T", "can't name a template"),
        ("add x --title T --status resolved", "status for a new incident"),
        ("add x --title T --components Nope=major", "Nope"),
        ("add x --title T --components API=maintenance", "under maintenance"),
        ("add x --title " + "t" * 201, "200"),
        ("show", "Give the template's name"),
        ("remove nope", "There is no template nope"),
        ("frobnicate", "/template has no 'frobnicate'"),
    ):
        reply = bot.reply("/template", text)
        assert says in reply, (text, reply)
    assert bot.rows() == before
    assert "/template add NAME --title TITLE" in bot.reply("/template", "help")


def test_the_declare_form_picker_fills_the_form(with_components: Slack) -> None:  # noqa: F811
    bot = with_components
    bot.reply("/template", ADD)
    bot.command("/incident")
    view = bot.wait_view()
    picker = next(b for b in view["blocks"] if b.get("block_id") == ui.TEMPLATE)
    option = picker["elements"][0]["options"][0]
    assert option["text"]["text"] == "db-failover"
    answer = bot.interact(_pick(view, option))
    assert answer.status == 200
    update = bot.fake.wait_for("views.update")[0].params
    assert update["view_id"] == "V0FAKE" and update["hash"] == "1700000000.abc"
    filled = json.loads(update["view"]) if isinstance(update["view"], str) else update["view"]
    inputs = {ui.block_of(b["block_id"]): b for b in filled["blocks"] if b["type"] == "input"}
    assert inputs[ui.TITLE]["element"]["initial_value"] == "Database failover"
    assert inputs[ui.STATUS]["element"]["initial_option"]["value"] == "identified"
    assert inputs[ui.MESSAGE]["element"]["initial_value"] == "We are failing over the database."
    api = code_of(bot, "API")
    assert inputs[ui.COMPONENT + api]["element"]["initial_option"]["value"] == "major_outage"
    # New block ids, so Slack shows the template's values over what was there.
    assert inputs[ui.TITLE]["block_id"] != ui.TITLE
    assert filled["private_metadata"] == view["private_metadata"]
    # Submitting the filled form opens the incident the template describes.
    assert bot.submit(filled).body == b""
    assert "Opened incident #1" in bot.wait_response()
    incident = bot.incident(1)
    assert incident.title == "Database failover" and incident.status == "identified"
    assert incident.updates[0].body == "We are failing over the database."
    # An error comes back under the field as the form names it.
    bot.reply("/incident", "resolve 1")
    data = bot.submit(filled, {_id(filled, ui.TITLE): ""}).json()
    assert list(data["errors"]) == [_id(filled, ui.TITLE)]


def test_non_editors_may_read_but_not_change_templates(guarded: Slack) -> None:  # noqa: F811
    bot = guarded
    assert "Added template" in bot.reply("/template", "add x --title T", user="U0BOSS")
    assert "x: “T”" in bot.reply("/template", "list", user="U0RANDOM")
    assert "Template x" in bot.reply("/template", "show x", user="U0RANDOM")
    before = bot.rows(skip=("audit_events",))
    for text in ("add y --title T", "remove x"):
        assert "may not template" in bot.reply("/template", text, user="U0RANDOM")
    assert bot.rows(skip=("audit_events",)) == before
    with bot.runtime.factory() as session:
        assert session.scalars(select(Template.name)).all() == ["x"]
        denied = session.scalars(
            select(AuditEvent.action).where(AuditEvent.actor == "U0RANDOM")
        ).all()
    assert denied == ["denied.template.add", "denied.template.remove"]


def _id(view: dict[str, Any], block: str) -> str:
    return next(
        b["block_id"] for b in view["blocks"] if ui.block_of(b.get("block_id", "")) == block
    )


def _pick(view: dict[str, Any], option: dict[str, Any]) -> dict[str, Any]:
    """The block_actions payload Slack sends when a template is picked in an open form."""
    return {
        "type": "block_actions",
        "team": {"id": "T0TEAM", "domain": "example"},
        "user": {"id": "U1", "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "token": "legacy",
        "trigger_id": "1337.45.pick",
        "container": {"type": "view", "view_id": "V0FAKE"},
        "view": {**view, "id": "V0FAKE", "hash": "1700000000.abc", "state": {"values": {}}},
        "actions": [
            {
                "action_id": ui.TEMPLATE_ACTION,
                "block_id": ui.TEMPLATE,
                "type": "static_select",
                "selected_option": option,
                "action_ts": "1700000002.000001",
            }
        ],
    }
