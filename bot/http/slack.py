"""`POST /slack/events`: bolt's WSGI handler, behind the gate in bot/slack/ingress.py.

The gate (signature, timestamp, body shape, replays) reads the body first and
either answers itself or hands bolt the environ it prepared; bolt's answer is
copied onto Falcon's response as it came. A slash command's replay check is
handed over with it, for the command's own transaction (bot/slack/ingress.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any
from wsgiref.types import WSGIApplication

import falcon

from bot import instruments
from bot.http.errors import Refuse, error_reply, json_reply, plain_reply, read_body
from bot.slack.ingress import TAKE_IN, SlackIngress, TakeIn, handing_over

PATH = "/slack/events"
SLACK_OFF = "Slack is off: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET."


class SlackEvents(Refuse):
    """POST only; `ingress` may be replaced (the tests give it a clock of their own)."""

    allow = ("POST",)

    def __init__(self, bolt: WSGIApplication, ingress: SlackIngress) -> None:
        self.bolt = bolt
        self.ingress = ingress

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """To bolt if the gate admits it, else the gate's answer."""
        started = time.perf_counter()
        raw = read_body(req)
        verdict = self.ingress.admit(req.env, raw)
        if verdict is None:
            take_in: TakeIn | None = req.env.get(TAKE_IN)  # a slash command's
            with handing_over(take_in):
                self._to_bolt(req.env, resp)
            if take_in is not None:
                self.ingress.after_bolt(take_in)
            if take_in is None or not take_in.replayed:  # a repeat is no command's ack
                instruments.instruments().ack.observe(time.perf_counter() - started)
        elif verdict.payload is None:
            plain_reply(resp, verdict.status, "")
        else:
            json_reply(resp, verdict.status, verdict.payload)

    def _to_bolt(self, environ: dict[str, Any], resp: falcon.Response) -> None:
        started: list[tuple[str, list[tuple[str, str]]]] = []

        def start_response(status: str, headers: list[tuple[str, str]], _: Any = None) -> Any:
            started.append((status, headers))
            return lambda _data: None  # bolt never writes; PEP 3333 asks for it

        body = _drain(self.bolt(environ, start_response))
        status, headers = started[-1]
        resp.status = status
        for name, value in headers:
            if name.lower() != "content-length":  # Falcon counts resp.data itself
                resp.append_header(name, value)
        resp.data = body


def slack_off(req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
    """The sink for /slack/events when Slack is off (or in Socket Mode): 404, any method."""
    error_reply(resp, 404, "slack_off", SLACK_OFF)


def _drain(items: Iterable[bytes]) -> bytes:
    """All of a WSGI body, closed after as PEP 3333 asks."""
    try:
        return b"".join(items)
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()
