"""The web app through a real HTTP server: the page, /healthz, the metrics API, coalescing."""

from __future__ import annotations

import dataclasses
import http.client
import itertools
import json
import os
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import WSGIApplication

import pytest
from sqlalchemy import func, select

from bot.coalesce import CoalescingPublisher
from bot.http import create_app
from bot.runtime import Runtime
from bot.settings import Settings
from renderers.publish import write_manifest
from storage import metrics
from storage.db import make_engine, make_sessionmaker, transaction
from storage.models import MetricPoint
from tests.conftest import T0, FakeClock

# --- a real HTTP server for WSGI apps, and a client that sends paths verbatim ------------


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving(app: WSGIApplication) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 in a thread; yields its base URL."""
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    base: str,
    method: str,
    path: str,
    body: bytes | str = b"",
    headers: dict[str, str] | None = None,
) -> Answer:
    """One HTTP request; the path goes on the wire exactly as given."""
    host = base.removeprefix("http://")
    conn = http.client.HTTPConnection(host, timeout=15)
    try:
        data = body.encode() if isinstance(body, str) else body
        conn.request(method, path, body=data or None, headers=headers or {})
        response = conn.getresponse()
        return Answer(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture
def page(tmp_path: Path) -> Path:
    root = tmp_path / "public"
    files = {
        "index.html": "<!doctype html><title>Status</title>",
        "history.html": "<!doctype html><title>History</title>",
        "incidents/12.html": "<!doctype html><title>#12</title>",
        "api/v2/summary.json": '{"status": {}}',
        "history.atom": "<feed/>",
        "history.rss": "<rss/>",
        "maintenance.ics": "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
        "badge.svg": "<svg xmlns='http://www.w3.org/2000/svg'/>",
    }
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    (root / ".hidden").write_text("hidden")
    (root / "leak.html").symlink_to(tmp_path / "secret.txt")
    (root / "outside").symlink_to(tmp_path, target_is_directory=True)
    # Listed as if published, so the symlink checks are tested behind the manifest's.
    write_manifest(root, [*files, "leak.html", "outside/secret.txt"])
    return root


@pytest.fixture
def web_settings(settings: Settings, page: Path) -> Settings:
    return dataclasses.replace(settings, page_dir=page, api_token="s3cret-token")


@pytest.fixture
def published() -> list[Collection[int]]:
    return []


@pytest.fixture
def site(web_settings: Settings, tmp_path: Path) -> Iterator[str]:
    """The page, /healthz and the rest, on a database that only has to answer SELECT 1."""
    runtime = Runtime(web_settings, engine=make_engine(f"sqlite:///{tmp_path / 'page.db'}"))
    with serving(create_app(runtime)) as base:
        yield base


@pytest.fixture
def api(
    engine: Any, web_settings: Settings, clock: FakeClock, published: list[Collection[int]]
) -> Iterator[str]:
    """The metrics API on each configured database."""
    runtime = Runtime(web_settings, engine=engine, clock=clock)
    with serving(create_app(runtime, on_metrics=lambda: published.append(()))) as base:
        yield base


# --- the page ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type", "text"),
    [
        ("/", "text/html; charset=utf-8", "<title>Status</title>"),
        ("/index.html", "text/html; charset=utf-8", "<title>Status</title>"),
        ("/history", "text/html; charset=utf-8", "<title>History</title>"),
        ("/incidents/12", "text/html; charset=utf-8", "#12"),
        ("/incidents/12.html", "text/html; charset=utf-8", "#12"),
        ("/api/v2/summary.json", "application/json", '"status"'),
        ("/history.atom", "application/atom+xml", "<feed/>"),
        ("/history.rss", "application/rss+xml", "<rss/>"),
        ("/maintenance.ics", "text/calendar; charset=utf-8", "BEGIN:VCALENDAR"),
        ("/badge.svg", "image/svg+xml", "<svg"),
    ],
)
def test_page_files_and_content_types(site: str, path: str, content_type: str, text: str) -> None:
    answer = call(site, "GET", path)
    assert answer.status == 200
    assert answer.headers["content-type"] == content_type
    assert text in answer.body.decode()
    assert answer.headers["content-length"] == str(len(answer.body))
    assert "max-age=" in answer.headers["cache-control"]
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_etag_and_last_modified_give_304(site: str, page: Path) -> None:
    first = call(site, "GET", "/")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert call(site, "GET", "/", headers={"If-None-Match": etag}).status == 304
    assert call(site, "GET", "/", headers={"If-None-Match": f'"other", W/{etag}'}).status == 304
    assert call(site, "GET", "/", headers={"If-None-Match": "*"}).status == 304
    again = call(site, "GET", "/", headers={"If-Modified-Since": modified})
    assert again.status == 304 and again.body == b""
    assert again.headers["etag"] == etag
    # If-None-Match decides when both are sent (RFC 9110).
    both = call(site, "GET", "/", headers={"If-None-Match": '"old"', "If-Modified-Since": modified})
    assert both.status == 200
    stale = formatdate(time.time() - 86400 * 365, usegmt=True)
    assert call(site, "GET", "/", headers={"If-Modified-Since": stale}).status == 200
    assert call(site, "GET", "/", headers={"If-Modified-Since": "garbage"}).status == 200

    # The publisher replaces files by renaming a new one over them: a new validator.
    replacement = page / ".tmp-index"
    replacement.write_text("<!doctype html><title>Changed</title>")
    os.replace(replacement, page / "index.html")
    changed = call(site, "GET", "/", headers={"If-None-Match": etag})
    assert changed.status == 200 and b"Changed" in changed.body
    assert changed.headers["etag"] != etag


def test_head_has_headers_and_no_body(site: str) -> None:
    get = call(site, "GET", "/api/v2/summary.json")
    head = call(site, "HEAD", "/api/v2/summary.json")
    assert head.status == 200 and head.body == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-type"] == "application/json"
    assert call(site, "HEAD", "/nope").status == 404


def test_other_methods_are_refused(site: str) -> None:
    answer = call(site, "POST", "/index.html", body="x")
    assert answer.status == 405
    assert answer.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/incidents/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/incidents/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/%252e%252e%252fsecret.txt",
        "/%25252e%25252e/secret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/%5c..%5csecret.txt",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/etc/passwd",
        "/C:%5cWindows%5cwin.ini",
        "/leak.html",
        "/leak",
        "/outside/secret.txt",
        "/.hidden",
        "/incidents/12.html%00.json",
        "/%c0%ae%c0%ae/secret.txt",
        "/incidents/",
        "/nope.html",
    ],
)
def test_nothing_outside_the_page_directory(site: str, path: str) -> None:
    answer = call(site, "GET", path)
    assert answer.status == 404, path
    assert b"SECRET" not in answer.body and b"root:" not in answer.body


def test_healthz(site: str) -> None:
    answer = call(site, "GET", "/healthz")
    assert answer.status == 200
    assert answer.json() == {"ok": True}
    assert answer.headers["cache-control"] == "no-store"


def test_healthz_503_when_the_database_is_away(web_settings: Settings, tmp_path: Path) -> None:
    broken = make_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}")
    with serving(create_app(Runtime(web_settings, engine=broken))) as base:
        answer = call(base, "GET", "/healthz")
    assert answer.status == 503
    assert answer.json()["ok"] is False


def test_healthz_503_when_postgres_is_unreachable(web_settings: Settings) -> None:
    broken = make_engine("postgresql://postgres@127.0.0.1:1/none")
    with serving(create_app(Runtime(web_settings, engine=broken))) as base:
        assert call(base, "GET", "/healthz").status == 503


def test_slack_path_without_slack(site: str) -> None:
    answer = call(site, "POST", "/slack/events", body="command=%2Fstatus")
    assert answer.status == 404
    assert answer.json()["error"] == "slack_off"


# --- the metrics API -----------------------------------------------------------------------

AUTH = {"Authorization": "Bearer s3cret-token", "Content-Type": "application/json"}


@pytest.fixture
def latency(engine: Any) -> str:
    with transaction(make_sessionmaker(engine)) as session:
        metrics.add(session, name="API Response Times", unit="ms", description=None, now=T0)
    return "/api/metrics/API%20Response%20Times"


def points(engine: Any) -> list[tuple[Any, float]]:
    with engine.connect() as conn:
        rows = conn.execute(select(MetricPoint.at, MetricPoint.value).order_by(MetricPoint.at))
        return [(at, value) for at, value in rows]


def test_metrics_single_point(
    api: str, latency: str, engine: Any, published: list[Collection[int]]
) -> None:
    body = json.dumps({"value": 12.5, "at": "2026-06-10T09:59:00Z"})
    answer = call(api, "POST", latency, body, AUTH)
    assert answer.status == 200, answer.body
    assert answer.json() == {
        "ok": True,
        "metric": "API Response Times",
        "added": 1,
        "message": "Recorded 1 point of API Response Times.",
    }
    [(at, value)] = points(engine)
    assert value == 12.5 and at.isoformat() == "2026-06-10T09:59:00+00:00"
    assert published  # the page is asked to republish the chart


def test_metrics_batch_and_default_time(api: str, latency: str, engine: Any) -> None:
    batch = {
        "points": [
            {"value": 1, "at": "2026-06-10T19:00:00+10:00"},
            {"value": 2.5, "at": "2026-06-10T09:30:00Z"},
            {"value": 3},
        ]
    }
    answer = call(api, "POST", latency.lower(), json.dumps(batch), AUTH)  # any case
    assert answer.status == 200 and answer.json()["added"] == 3
    assert [v for _, v in points(engine)] == [1.0, 2.5, 3.0]
    assert points(engine)[-1][0] == T0


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Bearer s3cret-token-and-more"}, 401),
        ({"Authorization": "Basic s3cret-token"}, 401),
        ({"Authorization": "s3cret-token"}, 401),
    ],
)
def test_metrics_need_the_token(
    api: str, latency: str, engine: Any, headers: dict[str, str], status: int
) -> None:
    answer = call(api, "POST", latency, json.dumps({"value": 1}), headers)
    assert answer.status == status
    assert answer.json()["error"] == "unauthorized"
    assert "www-authenticate" in answer.headers
    assert points(engine) == []


@pytest.mark.parametrize(
    ("body", "wanted"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ("{}", '"value" must be a number'),
        ('{"value": "12"}', '"value" must be a number'),
        ('{"value": true}', '"value" must be a number'),
        ('{"value": NaN}', "finite"),
        ('{"value": 1, "at": "yesterday"}', "ISO 8601"),
        ('{"value": 1, "at": 12}', "ISO 8601"),
        ('{"value": 1, "at": "2026-06-10T09:00:00"}', "UTC offset"),
        ('{"value": 1, "at": "2026-06-11T09:00:00Z"}', "future"),
        ('{"points": []}', "non-empty list"),
        ('{"points": [{"value": 1}, 5]}', "points[1]"),
        ('{"points": [{"value": 1}, {"value": "x"}]}', "points[1]"),
    ],
)
def test_metrics_bad_bodies_are_400_and_write_nothing(
    api: str, latency: str, engine: Any, body: str, wanted: str
) -> None:
    answer = call(api, "POST", latency, body, AUTH)
    assert answer.status == 400
    assert answer.json()["error"] == "bad_request"
    assert wanted in answer.json()["message"]
    assert points(engine) == []


def test_metrics_too_many_points(api: str, latency: str, engine: Any) -> None:
    body = json.dumps({"points": [{"value": 1}] * 10_001})
    answer = call(api, "POST", latency, body, AUTH)
    assert answer.status == 400 and "10,000" in answer.json()["message"]
    # Refused on its Content-Length, before a byte of it is read.
    too_big = {**AUTH, "Content-Length": str(2 * 1024 * 1024)}
    assert call(api, "POST", latency, b"{}", too_big).status == 413
    assert points(engine) == []


def test_metrics_unknown_metric_and_methods(api: str, latency: str) -> None:
    answer = call(api, "POST", "/api/metrics/Nope", json.dumps({"value": 1}), AUTH)
    assert answer.status == 404
    assert "There is no metric 'Nope'" in answer.json()["message"]
    assert "'API Response Times'" in answer.json()["message"]
    assert call(api, "POST", "/api/metrics/", "{}", AUTH).status == 404
    assert call(api, "GET", latency, headers=AUTH).status == 405


def test_metrics_api_is_off_without_a_token(
    engine: Any, web_settings: Settings, latency: str
) -> None:
    runtime = Runtime(dataclasses.replace(web_settings, api_token=None), engine=engine)
    with serving(create_app(runtime)) as base:
        answer = call(base, "POST", latency, json.dumps({"value": 1}), AUTH)
    assert answer.status == 404
    assert "STATUSBOT_API_TOKEN" in answer.json()["message"]
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(MetricPoint)) == 0


# --- coalescing -----------------------------------------------------------------------------


class SlowPage:
    """A publish that takes a while and records what each run was asked to redo."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.runs: list[frozenset[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, dirty: Collection[int]) -> None:
        self.entered.set()
        self.gate.wait(10)
        time.sleep(self.seconds)
        self.runs.append(frozenset(dirty))


def test_a_burst_is_published_a_few_times_not_once_per_change() -> None:
    page = SlowPage()
    pages = CoalescingPublisher(page, window=0.2).start()
    try:
        started = time.monotonic()
        for n in range(100):
            pages.request([n])
        assert pages.flush(10)
        assert len(page.runs) <= 3
        assert set().union(*page.runs) == set(range(100))  # no incident forgotten
        assert time.monotonic() - started < 1.0
    finally:
        pages.stop()


def test_the_first_change_after_a_quiet_spell_publishes_at_once() -> None:
    page = SlowPage(seconds=0)
    pages = CoalescingPublisher(page, window=5.0).start()
    try:
        started = time.monotonic()
        pages.request([1])
        assert pages.flush(10)
        assert time.monotonic() - started < 1.0
        assert page.runs == [frozenset({1})]
    finally:
        pages.stop()


def test_changes_during_a_publish_get_one_more_publish() -> None:
    page = SlowPage(seconds=0)
    page.gate.clear()
    pages = CoalescingPublisher(page, window=0.01).start()
    try:
        pages.request([1])
        assert page.entered.wait(10)  # the first publish runs, held at the gate
        for n in (2, 3, 4):
            pages.request([n])
        page.gate.set()
        assert pages.flush(10)
        assert page.runs == [frozenset({1}), frozenset({2, 3, 4})]
    finally:
        pages.stop()


def test_a_failing_publish_does_not_stop_the_thread() -> None:
    calls: list[int] = []

    def flaky(dirty: Collection[int]) -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("template bug")

    pages = CoalescingPublisher(flaky, window=0.0).start()
    try:
        pages.request()
        assert pages.flush(10)
        pages.request()
        assert pages.flush(10)
        assert calls == [0, 1]
    finally:
        pages.stop()


def test_stop_publishes_what_is_pending_and_flush_works_without_a_thread() -> None:
    page = SlowPage(seconds=0)
    pages = CoalescingPublisher(page, window=10.0).start()
    pages.request([1])
    pages.flush(10)
    pages.request([2])  # waits for the window…
    pages.stop()  # …but stop cuts it short and publishes
    assert page.runs == [frozenset({1}), frozenset({2})]
    idle = CoalescingPublisher(page)
    idle.request([3])
    assert idle.flush()
    assert page.runs[-1] == frozenset({3})


def test_a_slow_page_gets_a_longer_rest_between_publishes() -> None:
    starts: list[float] = []

    def slow(dirty: Collection[int]) -> None:
        starts.append(time.monotonic())
        time.sleep(0.1)

    pages = CoalescingPublisher(slow, window=0.01, rest_ratio=2.0).start()
    try:
        until = time.monotonic() + 0.9
        while time.monotonic() < until:  # a steady stream of changes
            pages.request()
            time.sleep(0.01)
        pages.flush(10)
    finally:
        pages.stop()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps and min(gaps) >= 0.29  # 0.1 s publishing, then at least 0.2 s of rest
