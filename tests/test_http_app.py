"""The Falcon app's own edges, through a real HTTP server: errors never in Falcon's shape,
a logged 500 that tells the client nothing, no OPTIONS, header names in their usual case."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import create_engine

from bot.http import create_app
from bot.runtime import Runtime
from bot.settings import Settings
from tests.test_web import call, serving

AUTH = {"Authorization": "Bearer s3cret-token", "Content-Type": "application/json"}


def _no_connection() -> NoReturn:
    raise LookupError("a bug deep inside, with /secret/path in its message")


@pytest.fixture
def http_settings(settings: Settings, tmp_path: Path) -> Settings:
    return dataclasses.replace(settings, page_dir=tmp_path / "public", api_token="s3cret-token")


def test_an_unexpected_error_is_a_logged_plain_500(
    http_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # Not an error the health check expects (SQLAlchemyError, OSError): a bug.
    engine = create_engine("sqlite://", creator=_no_connection)
    app = create_app(Runtime(http_settings, engine=engine))
    with serving(app) as base, caplog.at_level(logging.ERROR, logger="bot.http.errors"):
        answer = call(base, "GET", "/healthz")
    assert answer.status == 500
    assert answer.body == b"Internal server error\n"
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    logged = [r for r in caplog.records if r.name == "bot.http.errors"]
    assert logged and logged[0].getMessage() == "GET /healthz failed"
    assert logged[0].exc_info is not None and logged[0].exc_info[0] is LookupError


def test_falcon_errors_come_in_our_json_shape(http_settings: Settings, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with serving(create_app(Runtime(http_settings, engine=engine))) as base:
        answer = call(base, "POST", "/api/metrics/Latency", b"{}", {**AUTH, "Content-Length": "-1"})
    assert answer.status == 400
    body = answer.json()
    assert body["ok"] is False and body["error"] == "bad_request"
    assert "Content-Length" in body["message"]
    assert "title" not in body  # Falcon's own serialisation


@pytest.mark.parametrize("path", ["/healthz", "/", "/index.html"])
def test_options_is_refused_like_any_other_method(http_settings: Settings, path: str) -> None:
    engine = create_engine("sqlite://")
    with serving(create_app(Runtime(http_settings, engine=engine))) as base:
        answer = call(base, "OPTIONS", path)
    assert answer.status == 405
    assert answer.headers["allow"] == "GET, HEAD"


def test_slack_events_take_post_only(http_settings: Settings) -> None:
    def bolt(environ: object, start_response: object) -> list[bytes]:
        raise AssertionError("bolt is not reached")

    engine = create_engine("sqlite://")
    with serving(create_app(Runtime(http_settings, engine=engine), slack=bolt)) as base:
        for method in ("GET", "OPTIONS", "PUT"):
            answer = call(base, method, "/slack/events")
            assert answer.status == 405, method
            assert answer.headers["allow"] == "POST"
            assert answer.body == b"Method not allowed\n"
