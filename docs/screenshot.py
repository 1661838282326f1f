"""Screenshot the demo page: `python docs/screenshot.py` writes docs/screenshot.png and
docs/screenshot-phone.png.

It loads the demo (`statusbot demo`'s example page) into a temporary SQLite
database with the page in Australia/Sydney, adds a generated "API Response
Times" metric, renders index.html and the incident pages into a temporary
directory, and photographs index.html with Debian's Chromium through Playwright:
full page at 1280 px wide, and a 390 px phone.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.demo import load_demo  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.settings import Settings  # noqa: E402
from renderers.html import render_html  # noqa: E402
from storage.snapshot import MetricView, PageInfo, Snapshot, build_snapshot  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEZONE = "Australia/Sydney"


def response_times(now: datetime) -> MetricView:
    """A made-up but plausible latency series: a daily swell, noise and a few spikes."""
    rng = random.Random(2017)

    def series(span: timedelta, step: timedelta) -> tuple[tuple[datetime, float], ...]:
        count = int(span / step)
        points = []
        for k in range(count + 1):
            at = now - span + k * step
            hour = (at.hour + at.minute / 60 + 10) % 24  # Sydney's day
            value = 118 + 34 * math.sin((hour - 9) / 24 * 2 * math.pi) + rng.gauss(0, 6)
            if rng.random() < 0.01:
                value += rng.uniform(60, 140)
            points.append((at, round(max(value, 40.0), 1)))
        return tuple(points)

    return MetricView(
        code="apiresponse1",
        name="API Response Times",
        unit="ms",
        description=None,
        series={
            "day": series(timedelta(days=1), timedelta(minutes=5)),
            "week": series(timedelta(days=7), timedelta(hours=1)),
            "month": series(timedelta(days=30), timedelta(hours=4)),
        },
    )


def demo_snapshot(workdir: Path, now: datetime) -> Snapshot:
    """The demo page in a fresh SQLite database, as a snapshot."""
    settings = Settings(
        database_url=f"sqlite:///{workdir / 'demo.db'}",
        timezone=TIMEZONE,
        page_name="Vero",
        page_url="https://status.example.com",
        support_email="support@example.com",
    )
    runtime = Runtime(settings, clock=lambda: now)
    runtime.ensure_schema()
    load_demo(runtime)
    page = PageInfo(
        id="demo",
        name=settings.page_name,
        url=settings.page_url,
        time_zone=settings.timezone,
        support_email=settings.support_email,
    )
    with runtime.factory() as session:
        snapshot = build_snapshot(session, page=page, now=now)
        if not snapshot.metrics:  # a demo without its stored metric: make one up
            snapshot = build_snapshot(session, page=page, now=now, metrics=[response_times(now)])
    runtime.engine.dispose()
    return snapshot


def write_site(snapshot: Snapshot, public: Path) -> Path:
    """Render every page into `public`; returns index.html's path."""
    for rel, html in render_html(snapshot).items():
        path = public / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    return public / "index.html"


def shoot(index: Path, out: Path, *, dark: bool = False) -> list[Path]:
    """Full-page desktop and phone screenshots of `index` into `out`."""
    from playwright.sync_api import sync_playwright

    scheme = "dark" if dark else "light"
    suffix = "-dark" if dark else ""
    shots = [
        (out / f"screenshot{suffix}.png", {"width": 1280, "height": 900}),
        (out / f"screenshot{suffix}-phone.png", {"width": 390, "height": 844}),
    ]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for path, viewport in shots:
                context = browser.new_context(
                    viewport=viewport, color_scheme=scheme, java_script_enabled=False
                )
                page = context.new_page()
                page.goto(index.as_uri())
                page.screenshot(path=str(path), full_page=True)
                context.close()
        finally:
            browser.close()
    return [p for p, _ in shots]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go")
    parser.add_argument("--dark", action="store_true", help="the dark colour scheme instead")
    parser.add_argument("--keep", type=Path, help="also keep the rendered site in this directory")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit("chromium not installed: apt-get install chromium")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        public = args.keep or workdir / "public"
        index = write_site(demo_snapshot(workdir, now), public)
        size = len(index.read_bytes())
        for path in shoot(index, args.out, dark=args.dark):
            print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        print(f"index.html: {size:,} bytes")


if __name__ == "__main__":
    main()
