"""A Statuspage stand-in on localhost for the import tests: the v2 public files, and the
v1 manage API with its key check, its pages of results and its rate limit.

Nothing here reaches the internet; the server listens on 127.0.0.1 on a free port.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

DATA = Path(__file__).parent / "data" / "statuspage"
PAGE_ID = "y2j98763l56x"
API_KEY = "sp-test-key-0123456789"
MAX_PER_PAGE = 25  # smaller than Statuspage's 100, so 60 incidents take three pages


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def v1_incidents(count: int) -> list[dict[str, Any]]:
    """`count` incidents from the v1 example, an hour apart, newest first as Statuspage lists."""
    template = load("v1/incident.json")
    out = []
    for n in range(count):
        item = copy.deepcopy(template)
        iid = f"inc{n:09d}"
        item["id"] = iid
        item["name"] = f"Elevated API errors {n + 1}"
        shift = n * 3600
        for key in ("created_at", "resolved_at", "updated_at", "postmortem_published_at"):
            item[key] = _shift(item[key], shift)
        for u in item["incident_updates"]:
            u["id"] = f"{iid}-{u['id'].rsplit('-', 1)[1]}"
            u["incident_id"] = iid
            for key in ("created_at", "updated_at", "display_at"):
                u[key] = _shift(u[key], shift)
        out.append(item)
    return out[::-1]


def _shift(stamp: str, seconds: int) -> str:
    from datetime import datetime, timedelta

    at = datetime.fromisoformat(stamp) + timedelta(seconds=seconds)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float
    status: int = 200


@dataclass
class Statuspage:
    """What the server serves: public files by path, v1 lists by name, and a 429 to give."""

    files: dict[str, bytes] = field(default_factory=dict)
    lists: dict[str, list[Any]] = field(default_factory=dict)
    page: dict[str, Any] = field(default_factory=dict)
    # Paths (with their query) to answer once with 429 and this Retry-After.
    throttle: dict[str, str] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    max_per_page: int = MAX_PER_PAGE


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:  # quiet
        return None

    def do_GET(self) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        record = Seen(parts.path, query, dict(self.headers.items()), time.monotonic())
        state.seen.append(record)
        key = parts.path + ("?" + parts.query if parts.query else "")
        if key in state.throttle:
            record.status = 429
            self._send(429, b'{"error":"rate limited"}', {"Retry-After": state.throttle.pop(key)})
            return
        if parts.path in state.files:
            self._send(200, state.files[parts.path])
            return
        prefix = f"/v1/pages/{PAGE_ID}"
        if parts.path.startswith("/v1/"):
            if self.headers.get("Authorization") != f"OAuth {API_KEY}":
                record.status = 401
                self._send(401, b'{"error":"Couldn\'t authenticate you"}')
                return
            if parts.path == prefix:
                self._send(200, json.dumps(state.page).encode())
                return
            name = parts.path.removeprefix(prefix + "/")
            if name in state.lists:
                size = "limit" if name == "subscribers" else "per_page"
                per_page = min(int(query.get(size, ["100"])[0]), state.max_per_page)
                # As Statuspage: subscribers' pages count from 0, every other list's from 1.
                first = 0 if name == "subscribers" else 1
                page = int(query.get("page", [str(first)])[0]) - first
                items = state.lists[name][page * per_page : (page + 1) * per_page]
                self._send(200, json.dumps(items).encode())
                return
        record.status = 404
        self._send(404, b'{"error":"Not found"}')

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: Statuspage) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class Server:
    """The stand-in, running in a thread: `url` is its base, `state` what it serves."""

    def __init__(self, state: Statuspage) -> None:
        self.state = state
        self._server = _Server(state)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def v2_files(directory: Path = DATA / "v2") -> dict[str, bytes]:
    """The files of a saved v2 page (a directory of *.json) at the paths a page serves."""
    return {f"/api/v2/{p.name}": p.read_bytes() for p in sorted(directory.glob("*.json"))}


def v1_state(incidents: int = 60) -> Statuspage:
    """The v1 API of the example page, with `incidents` incidents."""
    return Statuspage(
        page=load("v1/page.json"),
        lists={
            "components": load("v1/components.json"),
            "component-groups": load("v1/component-groups.json"),
            "incidents": v1_incidents(incidents),
            "subscribers": load("v1/subscribers.json"),
            "incident_templates": load("v1/incident_templates.json"),
        },
    )
