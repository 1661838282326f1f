"""The access log keeps the sign-up routes and drops their tokens."""

from __future__ import annotations

from types import SimpleNamespace

from gunicorn.config import Config  # type: ignore[import-untyped]

from bot.access_log import AccessLogger, redact


def test_tokens_are_redacted() -> None:
    for path in ("/subscribe/confirm/abc_-1", "/subscription/abc_-1", "/unsubscribe/abc_-1?x"):
        assert "abc_-1" not in redact(f"GET {path} HTTP/1.1")
    assert redact("GET /incidents/12 HTTP/1.1") == "GET /incidents/12 HTTP/1.1"
    for query in ("?api_key=sbk_abc_-1", "?page=2&api_key=sbk_abc_-1&q=x", "?API_KEY=sbk_abc_-1"):
        shown = redact(f"GET /v1/pages/p/incidents{query} HTTP/1.1")
        assert "abc_-1" not in shown and "api_key=…" in shown.lower()
    assert redact("page=2&api_key=sbk_abc_-1") == "page=2&api_key=…"
    assert redact("GET /v1/pages/p/incidents?q=my_api_key=1 HTTP/1.1").endswith(
        "q=my_api_key=1 HTTP/1.1"
    )


def test_the_logger_redacts_the_request_line() -> None:
    logger = AccessLogger(Config())
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/unsubscribe/SECRET",
        "PATH_INFO": "/unsubscribe/SECRET",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    resp = SimpleNamespace(status="200 OK", sent=10, headers=[])
    req = SimpleNamespace(headers=[])
    atoms = logger.atoms(resp, req, environ, SimpleNamespace(seconds=0, microseconds=1))
    assert "SECRET" not in atoms["r"] and "SECRET" not in atoms["U"]
    assert atoms["r"] == "POST /unsubscribe/… HTTP/1.1"


def test_the_logger_redacts_an_api_key_in_the_query() -> None:
    logger = AccessLogger(Config())
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/v1/pages/p/incidents?api_key=sbk_SECRET",
        "PATH_INFO": "/v1/pages/p/incidents",
        "QUERY_STRING": "api_key=sbk_SECRET",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    resp = SimpleNamespace(status="200 OK", sent=10, headers=[])
    req = SimpleNamespace(headers=[])
    atoms = logger.atoms(resp, req, environ, SimpleNamespace(seconds=0, microseconds=1))
    assert not [k for k, v in atoms.items() if isinstance(v, str) and "SECRET" in v]
