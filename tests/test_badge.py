"""badge.svg: well-formed, accessible, escaped, coloured by the page's indicator."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree

import pytest

from renderers.badge import COLORS, render_badge
from storage.rules import ALL_OK, PageStatus
from storage.snapshot import PageInfo, Snapshot

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2017, 9, 14, 21, 24, tzinfo=UTC)


def snapshot(status: PageStatus = ALL_OK, name: str = "Vero") -> Snapshot:
    return Snapshot(
        page=PageInfo(id="p", name=name, url="https://status.example.com", time_zone="UTC"),
        generated_at=T0,
        status=status,
        components=(),
        groups=(),
        layout=(),
        incidents=(),
        maintenances=(),
    )


def test_well_formed_and_accessible() -> None:
    svg = render_badge(snapshot())
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Vero status: All Systems Operational"
    assert root.findtext(f"{SVG}title") == "Vero status: All Systems Operational"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts == ["status", "status", "all systems operational", "all systems operational"]
    shadows = [t for t in root.iter(f"{SVG}text") if t.get("aria-hidden") == "true"]
    assert len(shadows) == 2


@pytest.mark.parametrize(
    ("indicator", "description"),
    [
        ("none", "All Systems Operational"),
        ("minor", "Partially Degraded Service"),
        ("major", "Partial System Outage"),
        ("critical", "Major System Outage"),
        ("maintenance", "Service Under Maintenance"),
    ],
)
def test_colour_follows_the_indicator(indicator: str, description: str) -> None:
    root = ElementTree.fromstring(render_badge(snapshot(PageStatus(indicator, description))))
    fills = [r.get("fill") for r in root.iter(f"{SVG}rect")]
    assert COLORS[indicator] in fills
    assert [t.text for t in root.iter(f"{SVG}text")][-1] == description.lower()


def test_every_colour_is_distinct() -> None:
    assert len(set(COLORS.values())) == len(COLORS)


def test_page_name_is_escaped() -> None:
    name = "<script>alert('x')</script> & \"Co\""
    svg = render_badge(snapshot(name=name))
    assert "<script" not in svg
    root = ElementTree.fromstring(svg)
    assert root.findtext(f"{SVG}title") == f"{name} status: All Systems Operational"
    assert root.get("aria-label") == f"{name} status: All Systems Operational"
    assert not list(root.iter(f"{SVG}script"))


def test_odd_text_stays_well_formed() -> None:
    status = PageStatus("minor", "Dégradé <partiel> & \x07lent")
    root = ElementTree.fromstring(render_badge(snapshot(status, name="Zürich\x00")))
    assert root.findtext(f"{SVG}title") == "Zürich status: Dégradé <partiel> & lent"


def test_width_grows_with_the_message() -> None:
    short = ElementTree.fromstring(render_badge(snapshot(PageStatus("minor", "Minor"))))
    long = ElementTree.fromstring(render_badge(snapshot()))
    assert int(short.get("width") or 0) < int(long.get("width") or 0)
    rects = list(long.iter(f"{SVG}rect"))
    left, right = int(rects[1].get("width") or 0), int(rects[2].get("width") or 0)
    assert left + right == int(long.get("width") or 0)


def test_same_snapshot_same_text() -> None:
    assert render_badge(snapshot()) == render_badge(snapshot())
