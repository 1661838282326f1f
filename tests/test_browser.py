"""The rendered page in a real browser: Debian's Chromium driven by Playwright.

Nothing runs from an injected payload, nothing is fetched from anywhere but the
page's own host, the `?` tooltip and each day's uptime detail open from the
keyboard, the Day / Week / Month charts switch with JavaScript off, the phone
layout fits, and axe-core finds no serious or critical accessibility violation
in either colour scheme.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser_path import HINT, find_chromium

# Under CI a missing Chromium fails the session before this (tests/conftest.py).
CHROMIUM = find_chromium()
if CHROMIUM is None:
    pytest.skip(HINT, allow_module_level=True)

from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import (  # noqa: E402
    Browser,
    BrowserContext,
    Locator,
    Page,
    Route,
    sync_playwright,
)

from renderers.html import render_html, stylesheet  # noqa: E402
from storage.snapshot import IncidentRef, Snapshot, UptimeDay  # noqa: E402
from tests.test_render_html import (  # noqa: E402
    ATTR,
    IMG,
    NOW,
    PAYLOAD,
    SCRIPT,
    component,
    days,
    demo_snapshot,
    group,
    incident,
    metric,
    snapshot,
)

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CSP_META = '<meta http-equiv="Content-Security-Policy"'


def hostile_snapshot() -> Snapshot:
    """A page whose every user-supplied string tries to run `window.__xss=1`."""
    ref = IncidentRef(number=21, title=f"Outage {IMG}", impact="major")
    bad_day = {88: UptimeDay(date.min, 0.98, 30, 10, 20, "major_outage", (ref,))}
    api = component(
        f"API {SCRIPT}{ATTR}",
        code="api",
        description=f"The REST API. {IMG}{ATTR}",
        status="partial_outage",
        uptime_days=days(special=bad_day),
        uptime=0.9995,
    )
    mail = group(
        f"Email {SCRIPT}",
        "g1",
        [component(f"Newsletters {IMG}", code="news", uptime_days=days(no_data=30))],
        position=1,
    )
    live = incident(
        21,
        f"Outage {SCRIPT}{IMG}{ATTR}",
        [
            ("investigating", f"Looking. {PAYLOAD}", NOW - timedelta(hours=2)),
            ("identified", f"Found it. {PAYLOAD} [docs](https://example.com)", NOW),
        ],
        impact="major",
        affected=[api],
    )
    upcoming = incident(
        22,
        f"Upgrade {IMG}",
        [("scheduled", PAYLOAD, NOW - timedelta(hours=1))],
        kind="maintenance",
        window=(NOW + timedelta(days=1), NOW + timedelta(days=1, hours=3)),
    )
    return snapshot(
        [api, mail],
        incidents=[live],
        maintenances=[upcoming],
        metrics=[metric(name=f"Latency {SCRIPT}")],
        name=f"Status {SCRIPT}",
        support_email="support@example.com",
    )


def write(pages: dict[str, str], root: Path, *, csp: bool = True) -> None:
    """The pages, and the stylesheet they link, as the publisher writes them."""
    sheet = stylesheet()
    (root / sheet.path).parent.mkdir(parents=True, exist_ok=True)
    (root / sheet.path).write_text(sheet.text, encoding="utf-8")
    for rel, html in pages.items():
        if not csp:  # so that escaping alone is what keeps the payloads inert
            start = html.index(CSP_META)
            html = html[:start] + html[html.index(">", start) + 1 :]
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hostile/ (with its CSP), hostile-nocsp/ (without), and demo/."""
    root = tmp_path_factory.mktemp("site")
    hostile = render_html(hostile_snapshot())
    write(hostile, root / "hostile")
    write(hostile, root / "hostile-nocsp", csp=False)
    write(render_html(demo_snapshot()), root / "demo")
    return root


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    """A static file server on 127.0.0.1, for the length of this module."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Guard:
    """Fails any request that leaves this machine, and remembers it."""

    def __init__(self) -> None:
        self.blocked: list[str] = []
        self.allowed: list[str] = []

    def __call__(self, route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("file", "data") or (
            parts.scheme == "http" and parts.hostname == "127.0.0.1"
        ):
            self.allowed.append(url)
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., tuple[Page, Guard]]]:
    """open_page(url, js=True, scheme="light", width=1280) -> (page, guard)."""
    contexts: list[BrowserContext] = []

    def opener(
        url: str, *, js: bool = True, scheme: str = "light", width: int = 1280
    ) -> tuple[Page, Guard]:
        context = browser.new_context(
            java_script_enabled=js,
            color_scheme=scheme,  # type: ignore[arg-type]
            viewport={"width": width, "height": 900},
        )
        contexts.append(context)
        guard = Guard()
        context.route("**/*", guard)
        page = context.new_page()
        page.goto(url)
        return page, guard

    yield opener
    for context in contexts:
        context.close()


# ---------------------------------------------------------------- injected payloads stay inert

HOSTILE_PAGES = ["index.html", "incidents/21.html", "incidents/22.html", "history.html"]


@pytest.mark.parametrize("variant", ["hostile", "hostile-nocsp"])
@pytest.mark.parametrize("path", HOSTILE_PAGES)
def test_no_payload_runs(
    open_page: Callable[..., tuple[Page, Guard]], server: str, variant: str, path: str
) -> None:
    dialogs: list[str] = []
    page, guard = open_page(f"{server}/{variant}/{path}")
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    # Wake anything a payload could hang on: hover and focus the interactive parts, open
    # the groups.
    for summary in page.locator("main summary").all():
        summary.click()
    for selector in ("main .qb", "main .bars li", "main a", "main label"):
        for item in page.locator(selector).all()[:30]:
            if item.is_visible():
                item.hover(force=True)  # tooltips may cover one another: no matter here
                item.focus()
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert dialogs == []
    assert page.locator("script").count() == 0
    assert page.locator("img").count() == 0
    assert page.locator("a[href*='script:' i], a[href^='data:' i]").count() == 0
    assert page.locator("[onload], [onerror], svg [onload]").count() == 0
    assert guard.blocked == []


def test_injected_text_shows_as_text(
    open_page: Callable[..., tuple[Page, Guard]], server: str
) -> None:
    page, _ = open_page(f"{server}/hostile-nocsp/incidents/21.html", js=False)
    assert SCRIPT in page.locator("h1").inner_text()
    assert page.locator("a", has_text="docs").get_attribute("href") == "https://example.com"


# ---------------------------------------------------------------- nothing leaves the machine


@pytest.mark.parametrize(
    "path", ["index.html", "incidents/1.html", "incidents/2.html", "history.html"]
)
def test_no_request_to_any_other_host(
    open_page: Callable[..., tuple[Page, Guard]], server: str, site: Path, path: str
) -> None:
    page, guard = open_page(f"{server}/demo/{path}")
    page.wait_for_load_state("networkidle")
    assert guard.blocked == []
    assert guard.allowed and all(u.startswith(server) for u in guard.allowed)
    # and from file:// too, with every resource the page would load
    page, guard = open_page((site / "demo" / path).as_uri())
    page.wait_for_load_state("networkidle")
    assert guard.blocked == []


# ---------------------------------------------------------------- keyboard, no JavaScript


def test_tooltip_shows_on_keyboard_focus(
    open_page: Callable[..., tuple[Page, Guard]], server: str
) -> None:
    page, _ = open_page(f"{server}/demo/index.html", js=False)
    tip = page.locator("#d-api")
    assert tip.get_attribute("role") == "tooltip"
    assert not tip.is_visible()
    for _ in range(15):
        page.keyboard.press("Tab")
        if page.locator(".qb:focus").count():
            break
    focused = page.locator(":focus")
    assert focused.get_attribute("aria-describedby") == "d-api"
    assert tip.is_visible()
    assert "Our REST API" in tip.inner_text()
    page.keyboard.press("Tab")
    assert not tip.is_visible()
    page.locator(".qb").first.hover()
    assert tip.is_visible()


def popped(locator: Locator) -> bool:
    """Whether a tooltip is open: visually hidden ones are 1 px boxes, open ones are not."""
    box = locator.bounding_box()
    return box is not None and box["width"] > 20 and box["height"] > 10


def test_uptime_day_detail_by_keyboard_and_hover(
    open_page: Callable[..., tuple[Page, Guard]], server: str
) -> None:
    page, _ = open_page(f"{server}/hostile/index.html", js=False)
    bad = page.locator(".bars").first.locator("li").nth(88)
    detail = bad.locator("div")
    assert not popped(detail)
    bad.focus()
    assert popped(detail)
    assert "Major outage 10 min" in detail.inner_text()
    assert "Partial outage 20 min" in detail.inner_text()
    page.keyboard.press("Tab")  # into the incident link inside the tooltip
    assert page.locator(":focus").get_attribute("href") == "incidents/21.html"
    assert popped(detail)
    page.keyboard.press("Tab")  # past the plain last day, which is no tab stop: this closes
    assert not popped(detail)
    assert page.locator(":focus").evaluate("e => e.closest('.bars')") is None
    plain = page.locator(".bars").first.locator("li").nth(10)
    assert not popped(plain.locator("i"))
    plain.hover()
    assert popped(plain.locator("i"))
    after = plain.evaluate("e => getComputedStyle(e.querySelector('i'), '::after').content")
    assert after == '"No downtime recorded"'


def test_keyboard_stops_at_every_day_with_something_to_say_and_only_there(
    open_page: Callable[..., tuple[Page, Guard]], server: str
) -> None:
    page, _ = open_page(f"{server}/hostile/index.html", js=False)
    telling = page.locator(".bars li:has(div)")
    expected = [telling.nth(k).inner_text() for k in range(telling.count())]
    assert len(expected) == 1 and "Major outage 10 min" in expected[0]  # the API's bad day
    reached: list[str] = []
    for _ in range(200):
        page.keyboard.press("Tab")
        focused = page.locator(":focus")
        if not focused.count():
            break
        if focused.evaluate("e => e.matches('.bars li')"):
            reached.append(focused.inner_text())
    assert reached == expected
    # Each strip's accessible name tells the rest: the uptime, the range, the days without news.
    api = page.get_by_role("list", name=re.compile(r"^API .*: 99\.95 % uptime over the last 90"))
    assert api.count() == 1
    assert api.get_attribute("aria-label").endswith(  # type: ignore[union-attr]
        "Mar 13, 2026 to Jun 10, 2026; no downtime recorded on 89 days"
    )


def test_chart_views_switch_without_javascript(
    open_page: Callable[..., tuple[Page, Guard]], server: str
) -> None:
    page, _ = open_page(f"{server}/demo/index.html", js=False)

    def shown() -> list[str]:
        return [v for v in ("day", "week", "month") if page.locator(f".v-{v}").is_visible()]

    assert shown() == ["day"]
    page.click("label[for=r-week]")
    assert shown() == ["week"]
    page.click("label[for=r-month]")
    assert shown() == ["month"]
    # The keyboard: radio buttons move with the arrow keys.
    page.focus("#r-month")
    page.keyboard.press("ArrowRight")
    assert page.locator("#r-week").is_checked()
    assert shown() == ["week"]
    page.keyboard.press("ArrowRight")
    assert shown() == ["day"]


def test_groups_expand_without_javascript(
    open_page: Callable[..., tuple[Page, Guard]], server: str
) -> None:
    page, _ = open_page(f"{server}/demo/index.html", js=False)
    member = page.get_by_text("Transactional emails")
    assert not member.is_visible()
    page.get_by_text("Email Processing").click()
    assert member.is_visible()


def test_phone_layout_fits_and_shows_thirty_days(
    open_page: Callable[..., tuple[Page, Guard]], server: str
) -> None:
    page, _ = open_page(f"{server}/demo/index.html", width=390)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    bars = page.locator(".bars").first.locator("li")
    visible = [k for k in range(bars.count()) if bars.nth(k).is_visible()]
    assert visible == list(range(60, 90))
    assert page.get_by_text("30 days ago").first.is_visible()


# ---------------------------------------------------------------- axe-core


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(
    ("variant", "path"),
    [
        ("demo", "index.html"),
        ("demo", "incidents/1.html"),
        ("demo", "history.html"),
        ("hostile", "index.html"),
        ("hostile", "incidents/21.html"),
    ],
)
def test_axe_finds_nothing_serious(
    open_page: Callable[..., tuple[Page, Guard]], server: str, scheme: str, variant: str, path: str
) -> None:
    page, _ = open_page(f"{server}/{variant}/{path}", scheme=scheme)
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, results.generate_report()
