"""Metric values and times a chart can't draw: refused on every path, and harmless if stored."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from bot.http import create_app
from bot.runtime import Runtime
from bot.settings import Settings
from renderers import html
from renderers.charts import render_chart_svg
from storage import metrics
from storage.db import make_sessionmaker, transaction
from storage.models import Metric, MetricPoint
from tests.conftest import T0, FakeClock
from tests.helpers import Program, dump
from tests.test_render_html import incident, metric, snapshot
from tests.test_web import call, serving

AUTH = {"Authorization": "Bearer s3cret-token", "Content-Type": "application/json"}
LATENCY = "/api/metrics/Latency"


def stored(engine: Engine) -> list[float]:
    with engine.connect() as conn:
        return list(conn.scalars(select(MetricPoint.value).order_by(MetricPoint.id)))


# --- the command line ----------------------------------------------------------------------


@pytest.fixture
def statusbot(empty_db: tuple[Engine, str], tmp_path: Path) -> Program:
    program = Program(empty_db[1], tmp_path)
    assert program("db", "upgrade").returncode == 0
    assert program("metrics", "add", "Latency", "--unit", "ms").returncode == 0
    return program


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("1e308",), "1e308 is out of range: a value must lie between -1,000,000,000,000 and"),
        (("-1000000000001",), "out of range"),
        (("--", "-1e13"), "out of range"),
    ],
)
def test_the_program_refuses_a_value_beyond_the_bound(
    statusbot: Program, empty_db: tuple[Engine, str], args: tuple[str, ...], says: str
) -> None:
    before = dump(empty_db[0])
    done = statusbot("metrics", "push", "Latency", *args)
    assert done.returncode == 2, done.stdout
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert dump(empty_db[0]) == before


def test_the_bound_itself_is_a_value(statusbot: Program, empty_db: tuple[Engine, str]) -> None:
    done = statusbot("metrics", "push", "Latency", "1e12", "--no-render")
    assert done.returncode == 0, done.stderr
    assert stored(empty_db[0]) == [1e12]


def test_a_file_with_an_extreme_value_or_year_names_its_lines(
    statusbot: Program, empty_db: tuple[Engine, str], tmp_path: Path
) -> None:
    points = tmp_path / "points.csv"
    points.write_text(
        "2026-06-10T08:00:00Z,1e308\n"
        "0001-01-01T00:00:00+01:00,5\n"
        "9999-12-31T23:59:59-01:00,5\n"
        "2026-06-10T08:05:00Z,12\n"
    )
    before = dump(empty_db[0])
    done = statusbot("metrics", "push", "Latency", "--file", str(points))
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr
    assert f"{points} line 1: 1e308 is out of range" in done.stderr
    assert (
        f"{points} line 2: '0001-01-01T00:00:00+01:00' is outside the years 2000 to 2100"
        in done.stderr
    )
    assert f"{points} line 3: '9999-12-31T23:59:59-01:00' is outside the years" in done.stderr
    assert dump(empty_db[0]) == before


# --- the metrics API -----------------------------------------------------------------------


@pytest.fixture
def api(engine: Engine, settings: Settings, tmp_path: Path, clock: FakeClock) -> Iterator[str]:
    with_token = dataclasses.replace(settings, page_dir=tmp_path, api_token="s3cret-token")
    runtime = Runtime(with_token, engine=engine, clock=clock)
    with transaction(make_sessionmaker(engine)) as session:
        metrics.add(session, name="Latency", unit="ms", description=None, now=T0)
    with serving(create_app(runtime)) as base:
        yield base


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('{"value": 1e308}', "out of range: a value must lie between -1,000,000,000,000"),
        ('{"value": -1e13}', "out of range"),
        ('{"value": 1e400}', "finite"),  # Python's decoder reads it as infinity
        ('{"value": ' + "9" * 401 + "}", '"value" is out of range'),
        ('{"points": [{"value": 1}, {"value": -' + "9" * 401 + "}]}", "points[1]"),
        (
            '{"value": 1, "at": "0001-01-01T00:00:00+01:00"}',
            "'0001-01-01T00:00:00+01:00' is outside the years 2000 to 2100",
        ),
        ('{"value": 1, "at": "9999-12-31T23:59:59-01:00"}', "outside the years"),
        ('{"value": 1, "at": "1999-06-10T09:00:00Z"}', "outside the years"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"value": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ],
    ids=[
        "1e308",
        "-1e13",
        "1e400",
        "401-digit",
        "401-digit-in-a-batch",
        "year-1",
        "year-9999",
        "1999",
        "nested-list",
        "nested-value",
    ],
)
def test_values_and_times_a_chart_cannot_draw_are_400(
    api: str, engine: Engine, body: str, says: str
) -> None:
    answer = call(api, "POST", LATENCY, body, AUTH)
    assert answer.status == 400, answer.body[:500]
    assert answer.json()["error"] == "bad_request"
    assert says in answer.json()["message"]
    assert stored(engine) == []


def test_the_api_takes_values_up_to_the_bound(api: str, engine: Engine) -> None:
    body = json.dumps({"points": [{"value": 1e12}, {"value": -1e12}, {"value": 10**12}]})
    answer = call(api, "POST", LATENCY, body, AUTH)
    assert answer.status == 200, answer.body
    assert stored(engine) == [1e12, -1e12, 1e12]


# --- stored anyway: the page is still published ---------------------------------------------


def test_extreme_stored_values_do_not_stop_incidents_reaching_the_page(
    statusbot: Program, empty_db: tuple[Engine, str], backend: str
) -> None:
    """Points stored before the bound (or by hand) leave the page publishing, chart and all."""
    engine = empty_db[0]
    now = datetime.now(UTC)
    extremes = [1e308, 1e308, -1e308, math.inf, -math.inf]
    if backend == "postgresql":
        extremes.append(math.nan)  # SQLite stores NaN as NULL, which the column refuses
    with transaction(make_sessionmaker(engine)) as session:
        latency = session.scalars(select(Metric)).one()
        good = [(now - timedelta(minutes=30), 80.0), (now - timedelta(minutes=20), 90.0)]
        bad = [(now - timedelta(minutes=10, seconds=k), v) for k, v in enumerate(extremes)]
        metrics.add_points(session, latency, good + bad)
    statusbot.run("/incident open Checkout errors -- Looking into it.")
    page = (statusbot.workdir / "public" / "index.html").read_text()
    assert "Checkout errors" in page
    assert "Latency, last 24 hours: minimum 80 ms, average 85 ms, maximum 90 ms." in page
    assert not re.search(r"\b(inf|nan)\b", page, re.IGNORECASE)


def test_a_chart_clamps_and_skips_what_it_cannot_draw() -> None:
    points = [
        (T0 - timedelta(minutes=4), 1e308),
        (T0 - timedelta(minutes=3), 1e308),
        (T0 - timedelta(minutes=2), math.inf),
        (T0 - timedelta(minutes=1), math.nan),
        (T0, -1e308),
    ]
    svg = render_chart_svg(points, unit="ms", tz=UTC, title="Latency")
    assert "minimum -1,000,000,000,000 ms" in svg
    assert "maximum 1,000,000,000,000 ms" in svg
    assert not re.search(r"\b(inf|nan)\b", svg, re.IGNORECASE)


def test_a_chart_that_fails_is_unavailable_and_the_rest_of_the_page_stands(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever breaks one chart (here a drawing error forced on one metric) stays in it."""
    real = html.render_chart_svg

    def flaky(points: Any, **kwargs: Any) -> Any:
        if kwargs["title"].startswith("Broken"):
            raise OverflowError("cannot convert float infinity to integer")
        return real(points, **kwargs)

    monkeypatch.setattr(html, "render_chart_svg", flaky)
    open_one = incident(1, "Checkout errors", [("investigating", "Looking into it.", T0)])
    page = snapshot(incidents=[open_one], metrics=[metric(name="Broken"), metric(name="Fine")])
    with caplog.at_level(logging.WARNING, logger="renderers.html"):
        out = html.render_index(page)
    assert "Checkout errors" in out
    assert "Broken, last 24 hours: chart unavailable." in out
    assert "Fine, last 24 hours: minimum" in out
    assert "the chart of metric 'Broken' could not be drawn" in caplog.text
