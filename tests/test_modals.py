"""The Block Kit modals: within Slack's limits, prefilled right, and read back by their ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.slack.listeners.modals import read_form, read_metadata
from commands import words
from renderers import slack_modals as ui
from storage.rules import ComponentStatus, Impact
from storage.snapshot import AffectedView, IncidentView
from tests.test_slack_http import state

T = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)


def choices(n: int) -> list[ui.ComponentChoice]:
    return [
        ui.ComponentChoice(code=f"c{i:04d}", name=f"Service {i}", status="operational")
        for i in range(n)
    ]


def incident(**changes: Any) -> IncidentView:
    api = AffectedView(
        code="c0001",
        name="Service 1",
        status="major_outage",
        group_code=None,
        position=1,
        showcase=True,
        description=None,
        created_at=T,
        updated_at=T,
        start_date=None,
    )
    values: dict[str, Any] = {
        "number": 12,
        "kind": "incident",
        "title": "Checkout <errors> & more",
        "status": "identified",
        "impact": "critical",
        "created_at": T,
        "updated_at": T,
        "started_at": T,
        "monitoring_at": None,
        "resolved_at": None,
        "scheduled_for": None,
        "scheduled_until": None,
        "auto": True,
        "components": (api,),
        "updates": (),
        **changes,
    }
    return IncidentView(**values)


def check_limits(view: dict[str, Any]) -> None:
    """Slack's documented limits for a modal and its blocks."""
    assert view["type"] == "modal"
    for key in ("title", "submit", "close"):
        assert view[key]["type"] == "plain_text" and 0 < len(view[key]["text"]) <= 24
    assert len(view["blocks"]) <= 100
    assert len(view["private_metadata"]) <= 3000
    ids = [b["block_id"] for b in view["blocks"] if "block_id" in b]
    assert len(ids) == len(set(ids))
    assert all(len(i) <= 255 for i in ids)
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        assert len(block["label"]["text"]) <= 2000
        element = block["element"]
        assert element["action_id"] == ui.VALUE
        options = element.get("options", [])
        assert len(options) <= 100
        for option in options:
            assert len(option["text"]["text"]) <= 75 and len(option["value"]) <= 150
        for key in ("initial_option",):
            if key in element:
                assert element[key] in options
        for chosen in element.get("initial_options", []):
            assert chosen in options
        if element["type"] == "plain_text_input":
            assert element["max_length"] <= 3000


def test_limits_mirror_the_commands() -> None:
    assert ui.MAX_TITLE == words.MAX_TITLE
    assert ui.MAX_MESSAGE == words.MAX_MESSAGE


def test_declare_modal() -> None:
    view = ui.declare_incident_modal(choices(3), metadata='{"response_url": "x"}')
    check_limits(view)
    assert view["callback_id"] == ui.DECLARE
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert {ui.TITLE, ui.STATUS, ui.IMPACT, ui.MESSAGE, ui.NOTIFY} <= set(blocks)
    assert blocks[ui.STATUS]["element"]["initial_option"]["value"] == "investigating"
    assert [o["value"] for o in blocks[ui.STATUS]["element"]["options"]] == [
        "investigating",
        "identified",
        "monitoring",
    ]
    assert blocks[ui.IMPACT]["element"]["initial_option"]["value"] == ui.AUTO
    select = blocks[ui.COMPONENT + "c0001"]["element"]
    assert select["initial_option"]["value"] == ui.UNCHANGED
    values = [o["value"] for o in select["options"]]
    assert values == [ui.UNCHANGED, *(s.value for s in ui.INCIDENT_STATES)]
    assert "under_maintenance" not in values  # maintenance has its own command
    assert blocks[ui.NOTIFY]["element"]["initial_options"]  # notify is on by default
    assert blocks[ui.MESSAGE]["optional"] is True
    assert blocks[ui.TITLE]["optional"] is False


def test_declare_modal_without_components_says_how_to_add_them() -> None:
    view = ui.declare_incident_modal([])
    check_limits(view)
    assert any("/component add" in json.dumps(b) for b in view["blocks"])


@pytest.mark.parametrize("count", [ui.MAX_COMPONENT_SELECTS, ui.MAX_COMPONENT_SELECTS + 1, 150])
def test_many_components_stay_within_the_block_limit(count: int) -> None:
    view = ui.declare_incident_modal(choices(count))
    check_limits(view)
    ids = {b.get("block_id") for b in view["blocks"]}
    if count <= ui.MAX_COMPONENT_SELECTS:
        assert ui.COMPONENT + "c0000" in ids
    else:
        assert {ui.COMPONENTS, ui.COMPONENTS_STATE} <= ids


def test_long_names_are_cut_to_fit() -> None:
    long = [ui.ComponentChoice(code="c1", name="x" * 200, status="operational")]
    check_limits(ui.declare_incident_modal(long * 1))
    many = [
        ui.ComponentChoice(code=f"c{i}", name="y" * 200, status="operational") for i in range(60)
    ]
    check_limits(ui.declare_incident_modal(many))


def test_post_update_modal_is_prefilled() -> None:
    view = ui.post_update_modal(incident(), choices(3), metadata='{"number": 12}')
    check_limits(view)
    assert view["callback_id"] == ui.UPDATE
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks[ui.TITLE]["element"]["initial_value"] == "Checkout <errors> & more"
    assert blocks[ui.STATUS]["element"]["initial_option"]["value"] == "identified"
    assert "resolved" in [o["value"] for o in blocks[ui.STATUS]["element"]["options"]]
    assert "(critical)" in blocks[ui.IMPACT]["element"]["initial_option"]["text"]["text"]
    affected = blocks[ui.COMPONENT + "c0001"]["element"]["initial_option"]["value"]
    assert affected == "major_outage"
    assert blocks[ui.COMPONENT + "c0000"]["element"]["initial_option"]["value"] == ui.UNCHANGED
    component_ids = [
        b["block_id"] for b in view["blocks"] if b.get("block_id", "").startswith(ui.COMPONENT)
    ]
    assert component_ids[0] == ui.COMPONENT + "c0001"  # affected first
    assert blocks[ui.MESSAGE]["optional"] is False  # an update needs words
    summary = blocks["summary"]["text"]["text"]
    assert "#12" in summary and "&lt;errors&gt; &amp; more" in summary  # escaped mrkdwn


def test_post_update_modal_for_a_component_under_maintenance() -> None:
    view = ui.post_update_modal(
        incident(), [ui.ComponentChoice("c0001", "Service 1", "under_maintenance")]
    )
    check_limits(view)  # no initial option outside the options


def test_resolve_modal() -> None:
    view = ui.resolve_modal(incident(), metadata='{"number": 12}')
    check_limits(view)
    assert view["callback_id"] == ui.RESOLVE
    ids = [b.get("block_id") for b in view["blocks"]]
    assert ui.MESSAGE in ids and ui.NOTIFY in ids and ui.STATUS not in ids


# --- reading a submission back ------------------------------------------------------------


def test_read_declare_form() -> None:
    view = ui.declare_incident_modal(choices(3))
    form = read_form(
        {
            **view,
            "state": state(
                view,
                {
                    ui.TITLE: "  Checkout   errors ",
                    ui.STATUS: "monitoring",
                    ui.IMPACT: "major",
                    ui.COMPONENT + "c0002": "partial_outage",
                    ui.MESSAGE: " Looking. ",
                    ui.NOTIFY: [],
                },
            ),
        }
    )
    assert form.errors == {}
    assert form.title == "Checkout errors"
    assert form.status == "monitoring"
    assert form.impact is Impact.MAJOR
    assert form.components == [("c0002", ComponentStatus.PARTIAL, ui.COMPONENT + "c0002")]
    assert form.message == "Looking."
    assert form.notify is False


def test_read_form_defaults_and_errors() -> None:
    view = ui.declare_incident_modal(choices(1))
    form = read_form({**view, "state": state(view, {ui.TITLE: "Down"})})
    assert form.errors == {} and form.impact is None and form.notify is True
    assert form.components == [] and form.message is None
    bad = read_form({**view, "state": state(view, {ui.TITLE: None, ui.MESSAGE: "x" * 3001})})
    assert set(bad.errors) == {ui.TITLE, ui.MESSAGE}
    update = ui.post_update_modal(incident(), choices(1))
    needs = read_form({**update, "state": state(update, {ui.MESSAGE: ""})}, message_required=True)
    assert set(needs.errors) == {ui.MESSAGE}


def test_read_the_multi_select_form() -> None:
    view = ui.declare_incident_modal(choices(50))
    picked = {ui.TITLE: "Down", ui.COMPONENTS: ["c0003", "c0007"]}
    missing_state = read_form({**view, "state": state(view, picked)})
    assert set(missing_state.errors) == {ui.COMPONENTS_STATE}
    form = read_form(
        {**view, "state": state(view, {**picked, ui.COMPONENTS_STATE: "major_outage"})}
    )
    assert form.errors == {}
    assert [(c, s) for c, s, _ in form.components] == [
        ("c0003", ComponentStatus.MAJOR),
        ("c0007", ComponentStatus.MAJOR),
    ]


@pytest.mark.parametrize(
    ("metadata", "number", "url"),
    [
        ('{"number": 12, "response_url": "https://hooks"}', 12, "https://hooks"),
        ('{"response_url": ""}', None, None),
        ("not json", None, None),
        ("[1]", None, None),
        ("", None, None),
        ('{"number": "12"}', None, None),
    ],
)
def test_read_metadata(metadata: str, number: int | None, url: str | None) -> None:
    meta = read_metadata({"private_metadata": metadata})
    assert (meta.number, meta.response_url) == (number, url)
