"""The pure half of the Statuspage import: decoding within limits and reading messy
documents into plain values (commands/statuspage_data.py, commands/statuspage_reader.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from commands.errors import CommandError
from commands.statuspage_data import MAX_COMPONENTS, MAX_DEPTH, decode
from commands.statuspage_reader import read_page

NOW = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)


def page(components: list[object], incidents: list[object] | None = None) -> dict[str, object]:
    return {
        "summary.json": {
            "page": {"id": "p1", "name": "P", "url": "https://p.example", "time_zone": "UTC"},
            "components": components,
            "incidents": incidents or [],
        }
    }


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"name": "[" * 1000 + "{" * 1000, "x": [[1]]})
    assert decode(text.encode(), "f")["x"] == [[1]]


def test_nesting_over_the_limit_is_refused_before_parsing() -> None:
    with pytest.raises(CommandError, match=f"refused above {MAX_DEPTH}"):
        decode(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "f")


def test_too_many_components_are_refused() -> None:
    many = [{"id": f"c{n}", "name": f"C {n}"} for n in range(MAX_COMPONENTS + 1)]
    with pytest.raises(CommandError, match="an import takes at most 5,000"):
        read_page(page(many), source="s", now=NOW)


def test_names_are_made_unique_and_lose_their_group_prefix() -> None:
    data = read_page(
        page(
            [
                {"id": "g1", "name": "Payments", "group": True, "components": ["a", "b"]},
                {"id": "g2", "name": "Cards", "group": True, "components": ["c"]},
                {"id": "a", "name": "Payments - API", "group_id": "g1"},
                {"id": "b", "name": "Payments: Webhooks", "group_id": "g1"},
                {"id": "c", "name": "API", "group_id": "g2"},
                {"id": "d", "name": "Status / Health, all=ok"},
            ]
        ),
        source="s",
        now=NOW,
    )
    names = {c.id: c.name for c in data.components}
    assert names == {
        "a": "API",
        "b": "Webhooks",
        "c": "Cards - API",  # "API" is Payments' already
        "d": "Status - Health - all - ok",
    }
    lines = "\n".join(data.notes.lines())
    assert "group-prefixed component names (the group's name taken off): 2" in lines
    assert "components sharing a name (told apart by group or number): 1" in lines


def test_updates_are_put_in_the_order_they_happened() -> None:
    incident = {
        "id": "i1",
        "name": "Down",
        "status": "resolved",
        "incident_updates": [
            {"id": "u2", "status": "resolved", "display_at": "2026-06-01T02:00:00Z"},
            {"id": "u1", "status": "investigating", "display_at": "2026-06-01T01:00:00+00:00"},
        ],
    }
    data = read_page(page([], [incident]), source="s", now=NOW)
    (read,) = data.incidents
    assert [u.id for u in read.updates] == ["u1", "u2"]
    assert read.created_at == datetime(2026, 6, 1, 1, 0, tzinfo=UTC)  # from the first update
    assert read.resolved_at is None  # not given; the importer takes the last update's time
