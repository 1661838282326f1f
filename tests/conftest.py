"""Fixtures: a database per test on every configured backend, a fixed clock, a runtime.

SQLite always runs. PostgreSQL runs too when TEST_DATABASE_URL is set (CI sets
it): each test gets a schema of its own, dropped afterwards. Under CI (CI=true)
the session refuses to start without PostgreSQL or Chromium, rather than
skipping the tests that need them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bot.runtime import Runtime
from bot.settings import Settings
from storage.db import make_engine, normalise_url
from storage.models import Base
from tests.browser_path import HINT, find_chromium
from tests.fake_slack import FakeSlack

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

# 10:00 UTC on a Wednesday, far from any DST change in Sydney or New York.
T0 = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)


def under_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether a CI runner is running us (CI=true, as .ci/run and CI services set it)."""
    return environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def ci_problems() -> list[str]:
    """What would make tests skip under CI: no PostgreSQL, or no Chromium."""
    problems = []
    if not PG_URL:
        problems.append(
            "TEST_DATABASE_URL is not set, so the PostgreSQL tests would not run "
            "(set it, e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    else:
        engine = make_engine(PG_URL)
        try:
            with engine.connect():
                pass
        except Exception as exc:  # any failure to connect means the same to CI
            problems.append(f"TEST_DATABASE_URL can't be reached: {type(exc).__name__}: {exc}")
        finally:
            engine.dispose()
    if find_chromium() is None:
        problems.append(HINT + ", so the browser tests would not run")
    return problems


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI, fail at once when a group of tests would only be skipped."""
    if not under_ci():
        return
    problems = ci_problems()
    if problems:
        pytest.exit(
            "CI=true, but " + "; and ".join(problems) + ".",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


@dataclass
class FakeClock:
    """A clock the test moves by hand."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


def make_test_engine(backend: str, tmp_path: Path) -> tuple[Engine, str, str | None]:
    """A fresh, empty database: (engine, url, schema to drop afterwards)."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'statusbot.db'}"
        return make_engine(url), url, None
    assert PG_URL
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = normalise_url(PG_URL)
    sep = "&" if "?" in url else "?"
    url = f"{url}{sep}options=-csearch_path%3D{schema}"
    return make_engine(url), url, schema


def drop_schema(schema: str) -> None:
    assert PG_URL
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_db(backend: str, tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    """An engine on a database with no tables, and its URL."""
    engine, url, schema = make_test_engine(backend, tmp_path)
    try:
        yield engine, url
    finally:
        engine.dispose()
        if schema:
            drop_schema(schema)


@pytest.fixture
def engine(empty_db: tuple[Engine, str]) -> Engine:
    """An engine on a database with statusbot's tables."""
    eng = empty_db[0]
    Base.metadata.create_all(eng)
    return eng


@pytest.fixture
def db_url(empty_db: tuple[Engine, str], engine: Engine) -> str:
    """The URL of the database behind `engine`, for subprocesses."""
    return empty_db[1]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> Settings:
    return Settings(
        timezone="Australia/Sydney",
        notify_channels=("C0INCIDENTS",),
        page_url="https://status.example.com",
        page_name="Example",
    )


@pytest.fixture
def runtime(engine: Engine, settings: Settings, clock: FakeClock) -> Runtime:
    return Runtime(settings, engine=engine, clock=clock)


@pytest.fixture(scope="module")
def fake_slack_server() -> Iterator[FakeSlack]:
    """One fake Slack Web API per test module: stopping one takes a moment (its poll)."""
    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture
def fake(fake_slack_server: FakeSlack) -> FakeSlack:
    """The module's fake Slack, forgetting every call, message, group, zone and failure
    of earlier tests."""
    fake_slack_server.reset()
    return fake_slack_server
