"""Block Kit builders: what the announcement shows, escaping, markdown, and Slack's limits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from renderers import slack
from storage.snapshot import AffectedView, ChangeView, IncidentView, UpdateView

PAGE = "https://status.example.com"
TZ = ZoneInfo("Australia/Sydney")
T0 = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)

# Tokens the renderer itself writes: Slack dates, links to our own page, and a URL
# someone typed, linked as itself (never under another label).
OURS = re.compile(
    r"<!date\^\d+\^[^|<>]*\|[^<>]*>|<https://status\.example\.com[^<>]*>|<https?://[^\s|<>]+>"
)
BLOCK_TYPES = {"header", "section", "context", "actions", "divider"}


# -- values ---------------------------------------------------------------------------
def component(name: str, status: str = "major_outage") -> AffectedView:
    return AffectedView(
        code=f"c{abs(hash(name)) % 10**10:010d}",
        name=name,
        status=status,
        group_code=None,
        position=1,
        showcase=True,
        description=None,
        created_at=T0,
        updated_at=T0,
        start_date=date(2026, 1, 1),
    )


def update(
    status: str = "investigating",
    body: str = "We are looking into it.",
    changes: tuple[ChangeView, ...] = (),
    at: datetime = T0,
) -> UpdateView:
    return UpdateView(
        code=f"u{int(at.timestamp())}",
        status=status,
        body=body,
        display_at=at,
        created_at=at,
        updated_at=at,
        deliver_notifications=True,
        changes=changes,
    )


def incident(**kw: Any) -> IncidentView:
    values: dict[str, Any] = {
        "number": 12,
        "kind": "incident",
        "title": "Checkout errors",
        "status": "investigating",
        "impact": "major",
        "created_at": T0,
        "updated_at": T0,
        "started_at": T0,
        "monitoring_at": None,
        "resolved_at": None,
        "scheduled_for": None,
        "scheduled_until": None,
        "auto": True,
        "components": (component("API"), component("Web", "degraded_performance")),
        "updates": (update(),),
    }
    values.update(kw)
    return IncidentView(**values)


def maintenance(**kw: Any) -> IncidentView:
    values: dict[str, Any] = {
        "kind": "maintenance",
        "title": "Database upgrade",
        "status": "scheduled",
        "impact": "maintenance",
        "scheduled_for": T0 + timedelta(hours=2),
        "scheduled_until": T0 + timedelta(hours=4),
        "components": (component("Database", "operational"),),
        "updates": (update("scheduled", "We will upgrade the database."),),
    }
    values.update(kw)
    return incident(**values)


# -- checks ---------------------------------------------------------------------------
def texts(value: Any) -> Iterator[str]:
    """Every text Slack would show or parse in a message."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                yield item
            else:
                yield from texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)


def check(message: dict[str, Any]) -> dict[str, Any]:
    """Structurally valid Block Kit within Slack's limits (ours and slack_sdk's checks)."""
    assert set(message) == {"text", "blocks"}
    assert isinstance(message["text"], str) and 0 < len(message["text"]) <= 3000
    blocks = message["blocks"]
    assert 1 <= len(blocks) <= 50
    action_ids: list[str] = []
    for block in blocks:
        assert block["type"] in BLOCK_TYPES
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert 0 < len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert block["text"]["type"] == "mrkdwn"
                assert 0 < len(block["text"]["text"]) <= 3000
            for field in block.get("fields", []):
                assert 0 < len(field["text"]) <= 2000
            assert len(block.get("fields", [])) <= 10
        if block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
        if block["type"] == "actions":
            assert 1 <= len(block["elements"]) <= 25
            for button in block["elements"]:
                assert button["type"] == "button"
                assert 0 < len(button["text"]["text"]) <= 75
                assert len(button.get("value", "")) <= 2000
                action_ids.append(button["action_id"])
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.to_dict()  # raises SlackObjectFormationError past any limit
    assert len(action_ids) == len(set(action_ids))
    return message


def assert_inert(message: dict[str, Any]) -> None:
    """No text can ping, mention, link elsewhere or inject markup."""
    for text in texts(message):
        rest = re.sub(r"(?m)^>", "", OURS.sub("", text))  # a quote, from markdown's "> "
        assert "<" not in rest and ">" not in rest, text
        assert not re.search(r"@(channel|here|everyone)", rest, re.IGNORECASE), text


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def joined(message: dict[str, Any]) -> str:
    return "\n".join(texts(message))


# -- the announcement -----------------------------------------------------------------
def test_announcement_shows_the_incident() -> None:
    view = incident(
        updates=(
            update("identified", "A **bad** deploy; rolling back.", at=T0 + timedelta(minutes=5)),
            update(),
        )
    )
    message = check(slack.announcement(view, page_url=PAGE, tz=TZ))
    header = message["blocks"][0]
    assert header["type"] == "header"
    assert "#12 Checkout errors" in header["text"]["text"]
    text = joined(message)
    assert "Investigating" in text
    assert "Major" in text  # impact
    assert "• API: Major Outage" in text
    assert "• Web: Degraded Performance" in text
    assert "*Identified*: A *bad* deploy; rolling back." in text  # the latest update only
    assert "We are looking into it." not in text
    assert f"<{PAGE}/incidents/12.html|" in text
    assert "Jun 10, 20:05 AEST" in text  # the fallback of Slack's local-time token
    assert "#12 Checkout errors" in message["text"]


def test_open_incident_has_update_resolve_and_note_buttons() -> None:
    message = check(slack.announcement(incident(), page_url=PAGE, tz=TZ))
    update_button, resolve, note = buttons(message)
    assert note["action_id"] == "incident_note" and note["text"]["text"] == "Add note"
    assert note["value"] == "12" and "style" not in note
    assert update_button["action_id"] == "incident_update"
    assert update_button["text"]["text"] == "Post update"
    assert update_button["value"] == "12"
    assert resolve["action_id"] == "incident_resolve"
    assert resolve["text"]["text"] == "Resolve"
    assert resolve["style"] == "danger"
    assert resolve["value"] == "12"
    confirm = resolve["confirm"]
    assert confirm["confirm"]["text"] == "Resolve" and confirm["deny"]["text"] == "Cancel"
    assert "#12" in confirm["title"]["text"]


@pytest.mark.parametrize(
    "view",
    [
        incident(status="resolved", resolved_at=T0),
        maintenance(status="completed"),
        maintenance(status="cancelled"),
    ],
    ids=["resolved", "completed", "cancelled"],
)
def test_closed_has_no_buttons(view: IncidentView) -> None:
    message = check(slack.announcement(view, page_url=PAGE, tz=TZ))
    assert buttons(message) == []
    assert slack.status_label(view.status) in joined(message)


def test_maintenance_shows_its_window_and_only_post_update() -> None:
    message = check(slack.announcement(maintenance(), page_url=PAGE, tz=TZ))
    text = joined(message)
    assert "*Window*" in text
    assert "Jun 10, 22:00 AEST" in text and "Jun 11, 00:00 AEST" in text
    assert "Scheduled" in text
    assert "Impact" not in text
    assert [b["action_id"] for b in buttons(message)] == ["incident_update"]
    assert "maintenance" in message["text"]


def test_without_components_or_updates() -> None:
    message = check(slack.announcement(incident(components=(), updates=()), page_url=PAGE, tz=TZ))
    assert "Components" not in joined(message)


# -- thread replies and other messages ------------------------------------------------
def test_update_reply_lists_component_changes() -> None:
    resolved = update(
        "resolved",
        "Fixed.",
        changes=(
            ChangeView("c1", "API", "major_outage", "operational"),
            ChangeView("c2", "Web", "degraded_performance", "operational"),
        ),
    )
    message = check(slack.update_reply(incident(), resolved, tz=TZ, page_url=PAGE))
    text = joined(message)
    assert "*Resolved*" in text
    assert "#12 Checkout errors" in text
    assert "API: Major Outage → Operational" in text
    assert "Web: Degraded Performance → Operational" in text
    assert "Fixed." in text
    assert buttons(message) == []
    assert message["text"].startswith("#12 Checkout errors: Resolved")


def test_update_reply_without_body() -> None:
    message = check(slack.update_reply(incident(), update("monitoring", ""), tz=TZ))
    assert "*Monitoring*" in joined(message)


def test_component_change() -> None:
    payload = {
        "component": "abc",
        "name": "API",
        "old_status": "major_outage",
        "new_status": "operational",
        "message": "Back to **normal**.",
        "actor": "U1",
    }
    message = check(slack.component_change(payload, page_url=PAGE))
    text = joined(message)
    assert "*API*: Major Outage → Operational" in text
    assert "Back to *normal*." in text
    assert message["text"] == "API: Major Outage → Operational"


def test_note() -> None:
    message = check(slack.note("Reminder: #3 “DB” starts soon.", page_url=PAGE))
    assert "Reminder: #3 “DB” starts soon." in joined(message)


# -- escaping -------------------------------------------------------------------------
HOSTILE = [
    "<!channel> wake up",
    "<!here|here>",
    "<@U123> did it",
    "<!subteam^S123|oncall>",
    "<script>alert(1)</script>",
    "Tom & Jerry > Itchy & Scratchy",
    "<https://evil.example|click me>",
    "@channel @here @everyone",
    "&lt;!channel&gt; already escaped",
    "<#C123|general>",
    "<!date^0^{date}|x>",
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_user_text_is_escaped_everywhere(hostile: str) -> None:
    view = incident(
        title=hostile[:200],
        components=(component(hostile[:50]),),
        updates=(
            update(
                "identified",
                hostile,
                changes=(ChangeView("c1", hostile[:50], "major_outage", "operational"),),
            ),
        ),
    )
    for message in (
        slack.announcement(view, page_url=PAGE, tz=TZ),
        slack.update_reply(view, view.updates[0], tz=TZ, page_url=PAGE),
        slack.component_change(
            {
                "name": hostile,
                "old_status": "operational",
                "new_status": "major_outage",
                "message": hostile,
            },
            page_url=PAGE,
        ),
        slack.note(hostile),
    ):
        check(message)
        assert_inert(message)


def test_escaping_is_the_one_slack_asks_for() -> None:
    assert slack.escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert slack.escape("<!channel>") == "&lt;!channel&gt;"
    assert slack.escape("&lt;") == "&amp;lt;"  # shown as typed, never unescaped
    assert slack.escape("hi @here") == "hi @\u2060here"
    assert slack.escape("bell\x07") == "bell"


def test_title_in_header_is_escaped() -> None:
    view = incident(title="<script>alert('x')</script> & co")
    header = slack.announcement(view, page_url=PAGE, tz=TZ)["blocks"][0]["text"]["text"]
    assert "&lt;script&gt;alert('x')&lt;/script&gt; &amp; co" in header


@settings(max_examples=150, deadline=None)
@given(
    title=st.text(min_size=1, max_size=200),
    body=st.text(max_size=3000),
    name=st.text(min_size=1, max_size=200),
)
def test_any_text_renders_valid_and_inert(title: str, body: str, name: str) -> None:
    view = incident(title=title, components=(component(name),), updates=(update(body=body),))
    for message in (
        slack.announcement(view, page_url=PAGE, tz=TZ),
        slack.update_reply(view, view.updates[0], tz=TZ, page_url=PAGE),
    ):
        check(message)
        assert_inert(message)


# -- markdown -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("**bold** and __bold__", "*bold* and *bold*"),
        ("*italic* and _italic_", "_italic_ and _italic_"),
        ("***both***", "*_both_*"),
        ("~~gone~~", "~gone~"),
        ("`**code**` stays", "`**code**` stays"),
        ("```\nif a < b && c:\n```", "```\nif a &lt; b &amp;&amp; c:\n```"),
        ("```python\nx\n```", "```\nx\n```"),
        ("```\nunclosed", "```\nunclosed\n```"),
        ("# Heading", "*Heading*"),
        ("- one\n* two\n+ three", "• one\n• two\n• three"),
        ("> quoted", "> quoted"),
        ("a > b", "a &gt; b"),
        ("[docs](https://example.com/a?b=1&c=2)", "<https://example.com/a?b=1&amp;c=2|docs>"),
        ("see https://example.com/x.", "see <https://example.com/x>."),
        ("[mail](mailto:ops@example.com)", "<mailto:ops@example.com|mail>"),
        ("[bad](javascript:alert(1))", "bad"),
        ("[rel](/incidents/1)", "rel"),
        ("[a|b](https://x.example)", "<https://x.example|a¦b>"),
        ("2*3*4 and snake_case_name", "2*3*4 and snake_case_name"),
        ("line one\nline two", "line one\nline two"),
    ],
)
def test_markdown_to_mrkdwn(markdown: str, expected: str) -> None:
    assert slack.mrkdwn(markdown) == expected


# -- limits ---------------------------------------------------------------------------
def test_long_body_is_cut_with_a_link_to_the_page() -> None:
    body = ("Tom & Jerry <3 " * 250)[:3000]  # escaping makes it far longer than 3,000
    view = incident(updates=(update(body=body),))
    for message in (
        slack.announcement(view, page_url=PAGE, tz=TZ),
        slack.update_reply(view, view.updates[0], tz=TZ, page_url=PAGE),
    ):
        check(message)
        assert_inert(message)
        cut = [t for t in texts(message) if t.endswith("|read more on the status page>")]
        assert cut, "a cut text links to the page"
        assert all(len(t) <= 3000 for t in cut)
        assert f"… <{PAGE}/incidents/12.html|read more on the status page>" in cut[0]
        for t in cut:  # never ends inside an entity
            head = t.rsplit("…", 1)[0]
            assert not re.search(r"&[a-z]*$", head)


def test_sixty_components_fit() -> None:
    many = tuple(component(f"Component number {i:02d} " + "x" * 40) for i in range(60))
    changes = tuple(
        ChangeView(f"c{i}", c.name, "operational", "major_outage") for i, c in enumerate(many)
    )
    view = incident(components=many, updates=(update(body="b" * 3000, changes=changes),))
    announcement = check(slack.announcement(view, page_url=PAGE, tz=TZ))
    listed = next(t for t in texts(announcement) if t.startswith("*Components*"))
    assert len(listed) <= 3000
    assert "Component number 00" in listed
    assert re.search(
        r"… and \d+ more on <https://status\.example\.com/incidents/12\.html\|", listed
    )
    check(slack.update_reply(view, view.updates[0], tz=TZ, page_url=PAGE))


def test_long_title_fits_the_header_and_the_buttons() -> None:
    view = incident(title="&" * 200)
    message = check(slack.announcement(view, page_url=PAGE, tz=TZ))
    header = message["blocks"][0]["text"]["text"]
    assert len(header) <= 150 and header.endswith("&amp;…")
    resolve = buttons(message)[1]
    assert len(resolve["confirm"]["text"]["text"]) <= 300


def test_every_state_renders_valid_blocks() -> None:
    for status in ("investigating", "identified", "monitoring", "resolved"):
        check(slack.announcement(incident(status=status), page_url=PAGE, tz=TZ))
    for status in ("scheduled", "in_progress", "verifying", "completed", "cancelled"):
        view = maintenance(status=status)
        check(slack.announcement(view, page_url=PAGE, tz=TZ))
        check(slack.update_reply(view, replace(view.updates[0], status=status), tz=TZ))


def test_clip_never_splits_a_link_or_an_entity() -> None:
    text = "abc &amp; <https://example.com|link> tail"
    for limit in range(5, len(text)):
        cut = slack.clip(text, limit)
        assert len(cut) <= limit
        head = cut.removesuffix("…")
        assert head.count("<") == head.count(">")
        assert not re.search(r"&[a-z]*$", head)


def test_a_body_that_starts_with_a_quote_starts_on_its_own_line() -> None:
    view = incident(updates=(update("identified", "> from the vendor\nWe wait."),))
    text = joined(slack.announcement(view, page_url=PAGE, tz=TZ))
    assert "*Identified*\n> from the vendor\nWe wait." in text
