"""`/healthz`: 200 `{"ok": true}` when the database answers `SELECT 1`, else 503."""

from __future__ import annotations

import logging

import falcon
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot.http.errors import Refuse, json_reply
from bot.runtime import Runtime

log = logging.getLogger(__name__)

PATH = "/healthz"
REFUSAL = "Method not allowed: use GET /healthz\n"


class Health(Refuse):
    """GET and HEAD only; Falcon answers the rest 405 with `Allow: GET, HEAD`."""

    allow = ("GET", "HEAD")

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """200 when the database answers, else 503."""
        try:
            with self.runtime.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as error:
            log.warning("health check: the database did not answer: %s", error)
            json_reply(resp, 503, {"ok": False, "error": "database unavailable"})
            return
        json_reply(resp, 200, {"ok": True})

    on_head = on_get  # Falcon sends no body for HEAD
