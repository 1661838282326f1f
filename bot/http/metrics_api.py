"""`POST /api/metrics/NAME`: points for a metric, with `Authorization: Bearer STATUSBOT_API_TOKEN`
or a v1 API key (as Bearer, OAuth or ?api_key=; the audit's actor is then the key's name).

404 for everything under the prefix when no token is set and no key made, 401 without one,
then 405 unless POST: the token is checked before anything else is said. A sink,
so that `/api/metrics/` and `/api/metrics/a/b` get this API's JSON 404 too.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import falcon

from bot.http.errors import error_reply, json_reply, read_body
from bot.http.v1.route import ApiError, RateLimited, authenticate, key_of
from bot.runtime import Runtime
from commands import dispatch
from commands.metrics import VALUE_RANGE, push_points
from commands.when import OUT_OF_RANGE, utc_in_years
from storage import api_keys

PREFIX = "/api/metrics/"
API_ACTOR = "api"  # who the audit log names for points sent to the metrics API
MAX_POINTS = 10_000
UNAUTHORISED = (
    "Send the API token as 'Authorization: Bearer STATUSBOT_API_TOKEN', or an API key "
    "(`statusbot api-key create NAME`) as 'Authorization: Bearer KEY'."
)


class MetricsApi:
    """The sink for PREFIX; `on_metrics` is told after points were added (to republish)."""

    def __init__(self, runtime: Runtime, on_metrics: Callable[[], None] | None = None) -> None:
        self.runtime = runtime
        self.on_metrics = on_metrics

    def _actor(self, req: falcon.Request, resp: falcon.Response) -> str | None:
        """Who sends the points: "api" for STATUSBOT_API_TOKEN, a v1 API key's name for a
        key (SPEC §10: "the same keys"); None when refused (the reply is written)."""
        token = self.runtime.settings.api_token
        if token and _authorised(req.get_header("Authorization") or "", token):
            return API_ACTOR
        if not token and not _any_key(self.runtime):
            error_reply(
                resp,
                404,
                "not_found",
                "The metrics API is off: set STATUSBOT_API_TOKEN or make a key with "
                "`statusbot api-key create NAME`.",
            )
            return None
        given = key_of(req)
        if given is None:
            _refuse_key(resp, 401, UNAUTHORISED)
            return None
        try:
            return authenticate(self.runtime, given)
        except RateLimited as limited:
            _refuse_key(resp, 429, limited.message)
            resp.set_header("Retry-After", str(limited.wait))
        except ApiError:
            _refuse_key(resp, 401, UNAUTHORISED)
        return None

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        """Add points to a metric: `{"value": 12.3, "at": ISO}` or `{"points": [...]}`."""
        actor = self._actor(req, resp)
        if actor is None:
            return
        if req.method != "POST":
            error_reply(resp, 405, "method_not_allowed", "POST points here.")
            resp.set_header("Allow", "POST")
            return
        # Falcon decoded the tunnelled UTF-8 of PATH_INFO; `%2F` and the like are still quoted.
        name = unquote(req.path[len(PREFIX) :]).strip("/")
        if not name or "/" in name:
            error_reply(resp, 404, "unknown_metric", "Name one metric: /api/metrics/NAME.")
            return
        raw = read_body(req)  # TooLarge: errors.py answers 413
        now = self.runtime.clock()
        try:
            points = parse_points(raw, now=now)
        except ValueError as error:
            error_reply(resp, 400, "bad_request", str(error))
            return
        ctx = self.runtime.context(actor)
        result = dispatch.run(
            self.runtime.factory,
            ctx,
            lambda session: push_points(session, ctx, name=name, points=points),
            what="the metrics API",
            note={"via": "metrics API"},
            usage=False,
        )
        if not result.ok:
            code = "unknown_metric" if result.field == "metric" else "bad_request"
            error_reply(resp, 404 if code == "unknown_metric" else 400, code, result.reply)
            return
        if self.on_metrics is not None:
            self.on_metrics()  # the chart changed: republish
        json_reply(
            resp,
            200,
            {"ok": True, "metric": name, "added": len(points), "message": result.reply},
        )


def _refuse_key(resp: falcon.Response, status: int, message: str) -> None:
    error_reply(resp, status, "unauthorized" if status == 401 else "rate_limited", message)
    if status == 401:
        resp.set_header("WWW-Authenticate", 'Bearer realm="statusbot"')


def parse_points(raw: bytes, *, now: datetime) -> list[tuple[datetime, float]]:
    """The points of a metrics request body; ValueError says what is wrong, for a 400."""
    try:
        data = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"The body is not JSON: {error}.") from error
    except RecursionError as error:  # the decoder recurses once per level of nesting
        raise ValueError(
            'The body is nested too deeply: send {"value": …} or {"points": [{"value": …}]}.'
        ) from error
    if not isinstance(data, dict):
        raise ValueError('Send a JSON object: {"value": 12.3, "at": "2026-06-10T10:00:00Z"}.')
    if "points" in data:
        items = data["points"]
        if not isinstance(items, list) or not items:
            raise ValueError('"points" must be a non-empty list of {"value": …, "at": …}.')
        if len(items) > MAX_POINTS:
            raise ValueError(f"Send at most {MAX_POINTS:,} points per request.")
        return [_point(item, now, where=f"points[{n}]") for n, item in enumerate(items)]
    return [_point(data, now, where="the body")]


def _point(item: object, now: datetime, *, where: str) -> tuple[datetime, float]:
    if not isinstance(item, dict):
        raise ValueError(f'{where} must be an object: {{"value": 12.3, "at": "…"}}.')
    value = item.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f'{where}: "value" must be a number.')
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits has no float
        raise ValueError(f'{where}: "value" is out of range: {VALUE_RANGE}.') from None
    at_text = item.get("at")
    if at_text is None:
        return now, number
    if not isinstance(at_text, str):
        raise ValueError(f'{where}: "at" must be an ISO 8601 time, e.g. 2026-06-10T10:00:00Z.')
    try:
        at = datetime.fromisoformat(at_text)
    except ValueError as error:
        raise ValueError(
            f'{where}: "at" {at_text!r} is not an ISO 8601 time, e.g. 2026-06-10T10:00:00Z.'
        ) from error
    if at.tzinfo is None:
        raise ValueError(f'{where}: "at" {at_text!r} has no UTC offset; add one, e.g. Z or +10:00.')
    utc = utc_in_years(at)
    if utc is None:
        raise ValueError(f'{where}: "at" ' + OUT_OF_RANGE.format(said=at_text))
    # Whether it is finite, in range and not in the future is the use case's to check.
    return utc, number


def _authorised(header: str, token: str) -> bool:
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _any_key(runtime: Runtime) -> bool:
    with runtime.reader() as session:
        return bool(api_keys.live(session))
