"""Fixtures: a database per test on every configured backend, a fixed clock, a runtime.

SQLite always runs. PostgreSQL runs too when TEST_DATABASE_URL is set (CI sets
it): each test gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bot.runtime import Runtime
from bot.settings import Settings
from storage.db import make_engine, normalise_url
from storage.models import Base
from tests.fake_slack import FakeSlack

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

# 10:00 UTC on a Wednesday, far from any DST change in Sydney or New York.
T0 = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)


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
