"""`GET /metrics`: Prometheus's text format, for operators (bot/instruments.py).

Off unless STATUSBOT_METRICS=on, which adds this route to the web port, or
STATUSBOT_METRICS_PORT=[HOST:]PORT, which serves it on a port of its own (from
the background process, 127.0.0.1 unless a host is given), where a firewall can
keep it from the public. It shows operational data (command counts, backlogs,
latencies): see SECURITY.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

import falcon
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from sqlalchemy.exc import SQLAlchemyError

from bot import instruments
from bot.http.errors import Refuse, error_reply
from bot.runtime import Runtime

log = logging.getLogger(__name__)

PATH = "/metrics"
REFUSAL = "Method not allowed: use GET /metrics\n"


class Metrics(Refuse):
    """GET and HEAD only."""

    allow = ("GET", "HEAD")

    def __init__(self, runtime: Runtime) -> None:
        self.registry = instruments.registry(runtime.factory, runtime.clock)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Every process's counts and the outbox's backlog, as Prometheus reads them."""
        try:
            body = generate_latest(self.registry)
        except SQLAlchemyError as error:
            log.warning("/metrics: the database did not answer: %s", error)
            error_reply(resp, 503, "database_unavailable", "The database did not answer.")
            return
        resp.status = 200
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = body

    on_head = on_get


def serve_port(runtime: Runtime, host: str, port: int) -> Callable[[], None]:
    """Serve /metrics on a port of its own, in a thread; the function that stops it."""
    registry = instruments.registry(runtime.factory, runtime.clock)
    server, thread = start_http_server(port, addr=host, registry=registry)
    log.info("Prometheus metrics on http://%s:%d/metrics", host, port)
    return lambda: _stop(server, thread)


def _stop(server: WSGIServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(5)
