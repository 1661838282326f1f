"""Signing up in a real browser with JavaScript off: subscribe.html → the app → the manage page.

The page's files and the sign-up routes are served by the real app (create_app), the
form posting to the app's own address, as STATUSBOT_APP_URL says; axe-core finds no
serious or critical violation on the form or the manage page in either colour scheme.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.http import create_app
from bot.publish import Publisher
from bot.runtime import Runtime
from bot.settings import Settings
from storage.db import make_engine
from storage.models import Subscriber
from tests import test_browser
from tests.conftest import FakeClock
from tests.test_browser import CHROMIUM, Guard
from tests.test_web import serving

assert CHROMIUM is not None  # test_browser skipped this module already otherwise

from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import Page  # noqa: E402

Opener = Callable[..., tuple[Page, Guard]]
# test_browser.py's fixtures: one Chromium for the module, a guarded context per page.
browser = test_browser.browser
open_page = test_browser.open_page


@pytest.fixture
def app(settings: Settings, tmp_path: Path, clock: FakeClock) -> Iterator[tuple[str, Runtime]]:
    """The app on SQLite with three components, its page published with the form."""
    web = dataclasses.replace(settings, page_dir=tmp_path / "public")
    runtime = Runtime(web, engine=make_engine(f"sqlite:///{tmp_path / 'b.db'}"), clock=clock)
    runtime.ensure_schema()
    for line in (
        "/component add API",
        '/component add "Transactional emails" --group "Email Processing"',
        '/component add "Newsletter emails" --group "Email Processing"',
    ):
        assert runtime.run_line(line, user="U0EDITOR").ok
    with serving(create_app(runtime)) as base:
        publishing = Runtime(dataclasses.replace(web, app_url=base), engine=runtime.engine)
        assert Publisher(publishing).publish_all() is not None
        yield base, runtime


def stored(runtime: Runtime) -> Subscriber:
    with Session(runtime.engine) as session:
        found = session.scalars(select(Subscriber)).one()
        session.expunge_all()
        return found


def sign_up(open_page: Opener, base: str) -> Page:
    page, guard = open_page(f"{base}/subscribe.html", js=False)
    page.get_by_label("Email address").fill("ops@example.com")
    page.get_by_label("Transactional emails").check()
    page.get_by_role("button", name="Subscribe").click()
    assert guard.blocked == []
    return page


def test_the_form_signs_up_without_javascript(open_page: Opener, app: tuple[str, Runtime]) -> None:
    base, runtime = app
    page = sign_up(open_page, base)
    assert page.get_by_role("heading", name="Check your inbox").is_visible()
    sub = stored(runtime)
    assert [c.name for c in sub.components] == ["Transactional emails"]


def test_manage_and_unsubscribe_without_javascript(
    open_page: Opener, app: tuple[str, Runtime]
) -> None:
    base, runtime = app
    sign_up(open_page, base)
    token = stored(runtime).token
    page, guard = open_page(f"{base}/subscription/{token}", js=False)
    assert page.get_by_label("Transactional emails").is_checked()
    page.get_by_label("API").check()
    page.get_by_role("button", name="Save").click()
    assert page.get_by_text("Saved.").is_visible()
    assert sorted(c.name for c in stored(runtime).components) == ["API", "Transactional emails"]
    page.get_by_role("link", name="Unsubscribe").click()
    assert stored(runtime).unsubscribed_at is None  # the link only shows the button
    page.get_by_role("button", name="Unsubscribe").click()
    assert page.get_by_role("heading", name="You are unsubscribed").is_visible()
    assert stored(runtime).unsubscribed_at is not None
    assert guard.blocked == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("which", ["form", "manage"])
def test_axe_finds_nothing_serious(
    open_page: Opener, app: tuple[str, Runtime], scheme: str, which: str
) -> None:
    base, runtime = app
    if which == "form":
        url = f"{base}/subscribe.html"
    else:
        sign_up(open_page, base)
        url = f"{base}/subscription/{stored(runtime).token}"
    page, _ = open_page(url, scheme=scheme)
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, results.generate_report()
