"""Metric charts: inline SVG that is well-formed, scaled to its data, and accessible."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from renderers.charts import (
    downsample,
    format_value,
    nice_range,
    render_chart_svg,
    time_ticks,
)

SVG = "{http://www.w3.org/2000/svg}"
TZ = ZoneInfo("Australia/Sydney")
T0 = datetime(2026, 6, 9, 2, 0, tzinfo=UTC)  # 12:00 AEST


Points = list[tuple[datetime, float]]


def points(
    count: int,
    step: timedelta = timedelta(minutes=5),
    value: Callable[[int], float] = lambda k: 100.0 + k % 7,
) -> Points:
    return [(T0 + k * step, float(value(k))) for k in range(count)]


def chart(pts: Points, **kw: Any) -> tuple[str, ET.Element]:
    """The chart's markup and its parse: `xml.etree` insists on well-formed XML."""
    args: dict[str, Any] = {"unit": "ms", "tz": TZ, "width": 600, "height": 180}
    args.update({"title": "API Response Times"} | kw)
    markup = render_chart_svg(pts, **args)
    return str(markup), ET.fromstring(str(markup))


def svg_of(root: ET.Element) -> ET.Element:
    svg = root.find(f"{SVG}svg")
    assert svg is not None
    return svg


def line(root: ET.Element) -> str:
    paths = [p for p in root.iter(f"{SVG}path") if p.get("class") == "ln"]
    assert len(paths) == 1
    return paths[0].get("d") or ""


def coords(d: str) -> list[tuple[int, int]]:
    """Absolute points of a path of M, L (absolute), l (relative) and h steps, read as SVG
    reads them: a command's letter may be left out for the pairs that follow it (after M,
    those are absolute line-tos), and a "-" separates numbers as a space does."""
    out: list[tuple[int, int]] = []
    x = y = 0
    cmd = ""
    tokens = re.findall(r"[MLlhZ]|-?\d+", d)
    k = 0
    while k < len(tokens):
        if tokens[k].isalpha():
            cmd = tokens[k]
            k += 1
            if cmd == "Z":
                continue
        if cmd == "h":
            x += int(tokens[k])
            k += 1
        elif cmd in ("M", "L"):
            x, y = int(tokens[k]), int(tokens[k + 1])
            k += 2
            cmd = "L" if cmd == "M" else cmd
        elif cmd == "l":
            x, y = x + int(tokens[k]), y + int(tokens[k + 1])
            k += 2
        else:
            raise AssertionError(f"unexpected {tokens[k]!r} in {d!r}")
        out.append((x, y))
    return out


def test_well_formed_and_accessible() -> None:
    html, root = chart(points(288), title="API Response Times, last 24 hours")
    svg = svg_of(root)
    assert svg.get("role") == "img"
    title = svg.find(f"{SVG}title")
    desc = svg.find(f"{SVG}desc")
    assert title is not None and title.text == "API Response Times, last 24 hours"
    assert svg.get("aria-labelledby") == title.get("id")
    assert desc is not None and svg.get("aria-describedby") == desc.get("id")
    assert "Jun 9, 12:00" in (desc.text or "") and "AEST" in (desc.text or "")
    hidden = root.find("p")
    assert hidden is not None and hidden.get("class") == "vh"
    assert hidden.text == (
        "API Response Times, last 24 hours: minimum 100 ms, average 103 ms, maximum 106 ms."
    )
    assert "<script" not in html and "style=" not in html


def test_scales_to_the_data() -> None:
    _, root = chart(points(50, value=lambda k: 10.0 * k))  # 0 .. 490
    labels = [t.text for t in root.iter(f"{SVG}text") if t.text and t.text.endswith("ms")]
    assert labels == ["600 ms", "300 ms", "0 ms"]
    pts = coords(line(root))
    assert pts[0] == (0, 1000)  # the first value, 0, sits on the bottom line
    assert pts[-1][0] == 1000  # the last point at the right edge
    assert min(y for _, y in pts) == round((600 - 490) / 600 * 1000)  # the top value
    ys = [y for _, y in pts]
    assert ys == sorted(ys, reverse=True)  # rising values climb


def x_labels(root: ET.Element) -> list[str]:
    return [t.text or "" for g in root.iter(f"{SVG}g") if g.get("class") == "xl" for t in g]


def test_axis_labels_are_round_local_times() -> None:
    _, day = chart(points(289))  # 24 hours of 5-minute points from 12:00 AEST
    assert x_labels(day) == ["12:00", "16:00", "20:00", "00:00", "04:00", "08:00", "12:00"]
    _, month = chart(points(31, step=timedelta(days=1)))
    labels = x_labels(month)
    assert 3 <= len(labels) <= 6 and all(re.fullmatch(r"(Jun|Jul) \d+", x) for x in labels)


def test_time_ticks_follow_the_local_clock_across_dst() -> None:
    new_york = ZoneInfo("America/New_York")
    first = datetime(2026, 3, 7, 13, 0, tzinfo=UTC)  # 08:00 EST; clocks go forward next night
    ticks = time_ticks(first, first + timedelta(hours=24), new_york)
    local = [t.astimezone(new_york).strftime("%H:%M %Z") for t in ticks]
    assert local == [
        "08:00 EST",
        "12:00 EST",
        "16:00 EST",
        "20:00 EST",
        "00:00 EST",
        "04:00 EDT",
        "08:00 EDT",
    ]
    kolkata = ZoneInfo("Asia/Kolkata")  # a half-hour offset still gets whole local hours
    ticks = time_ticks(first, first + timedelta(hours=12), kolkata)
    assert {t.astimezone(kolkata).minute for t in ticks} == {0}


def test_empty_series() -> None:
    html, root = chart([])
    svg_of(root)
    assert not list(root.iter(f"{SVG}path"))
    assert "No data" in html
    assert root.find("p").text == "No data for this period."  # type: ignore[union-attr]


def test_single_point() -> None:
    _, root = chart(points(1, value=lambda k: 42.0))
    pts = coords(line(root))
    assert len(pts) == 2 and pts[0][1] == pts[1][1]  # a short level stroke
    assert "minimum 42 ms, average 42 ms, maximum 42 ms" in root.find("p").text  # type: ignore[union-attr,operator]


def test_constant_series_is_a_flat_line_below_the_top() -> None:
    _, root = chart(points(20, value=lambda k: 250.0))
    ys = {y for _, y in coords(line(root))}
    assert len(ys) == 1
    assert 0 < ys.pop() < 1000


def test_zero_and_negative_values() -> None:
    _, zeros = chart(points(10, value=lambda k: 0.0))
    assert {y for _, y in coords(line(zeros))} == {1000}
    _, mixed = chart(points(10, value=lambda k: k - 5.0), unit="°C")
    y_labels = [t.text for g in mixed.iter(f"{SVG}g") if g.get("class") == "yl" for t in g]
    assert y_labels == ["5 °C", "0 °C", "-5 °C"]


def test_large_input_is_downsampled_and_keeps_its_peak() -> None:
    pts = points(43_200, step=timedelta(minutes=1), value=lambda k: 900.0 if k == 20_000 else 100.0)
    html, root = chart(pts, width=600)
    assert len(coords(line(root))) <= 100
    assert min(y for _, y in coords(line(root))) == 100  # the 900 ms spike survived (0..1000)
    assert len(html) < 4_000


def test_sparse_already_downsampled_input_breaks_at_gaps() -> None:
    hourly = points(24, step=timedelta(hours=1))
    later = [(at + timedelta(days=3), v) for at, v in hourly]
    _, root = chart(hourly + later)
    assert line(root).count("M") == 2  # two runs, not a line across the gap
    assert not [p for p in root.iter(f"{SVG}path") if p.get("class") == "ar"]


def test_unsorted_input_is_sorted() -> None:
    pts = points(30)
    _, a = chart(pts)
    _, b = chart(list(reversed(pts)))
    assert line(a) == line(b)


def test_title_is_escaped() -> None:
    html, root = chart(points(5), title="<script>alert(1)</script> & co")
    assert "<script>" not in html
    assert svg_of(root).find(f"{SVG}title").text == "<script>alert(1)</script> & co"  # type: ignore[union-attr]


def test_ids_are_unique_per_key() -> None:
    one, _ = chart(points(5), key="m0d")
    two, _ = chart(points(5), key="m0w")
    assert 'id="m0d-t"' in one and 'id="m0w-t"' in two


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [(0, 490, (0, 600)), (0, 100, (0, 120)), (12, 13, (0, 16)), (-5, 4, (-5, 5)), (0, 0, (0, 1))],
)
def test_nice_range(lo: float, hi: float, expected: tuple[float, float]) -> None:
    assert nice_range(lo, hi) == pytest.approx(expected)


def test_downsample_keeps_the_ends() -> None:
    pts = points(1000)
    out = downsample(pts, 50)
    assert len(out) == 50 and out[0] == pts[0] and out[-1] == pts[-1]
    assert downsample(pts[:10], 50) == pts[:10]


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(148.2, "ms", "148 ms"), (2.5, "s", "2.5 s"), (99.95, "%", "100%"), (1234.0, "", "1,234")],
)
def test_format_value(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text
