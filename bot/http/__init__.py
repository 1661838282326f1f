"""The one WSGI app `statusbot serve` runs, on Falcon: Slack, the page, /healthz, the metrics API.

`create_app` wires one module per route family; errors.py gives every route the
same error shapes, the body limit and a logged 500 that tells the client nothing.

- `POST /slack/events` (slack.py): bolt, behind the gate in bot/slack/ingress.py;
- `GET /healthz` (health.py): `SELECT 1`, GET and HEAD only;
- `GET /metrics` (prometheus.py): for Prometheus, only with STATUSBOT_METRICS=on;
- `POST /api/metrics/NAME` (metrics_api.py): points, with the API token;
- `/subscribe`, `/subscription/T`, `/unsubscribe/T` (subscribe.py): signing up from the page;
- `/v1/…` (v1/): Statuspage's v1 manage API, with API keys, and `/v1/openapi.json`;
- everything else (pages.py): the files the publisher listed in `settings.page_dir`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import falcon

from bot.http import errors, health, metrics_api, pages, prometheus, subscribe, v1
from bot.http.slack import PATH as SLACK_PATH
from bot.http.slack import SlackEvents, slack_off
from bot.runtime import Runtime
from bot.slack.ingress import SlackIngress

# Falcon keeps header names in lower case; on the wire they keep the case they always
# had (HTTP says case does not matter, but some clients and scripts compare them).
_NAMES = {"etag": "ETag", "www-authenticate": "WWW-Authenticate"}


class HttpApp(falcon.App[falcon.Request, falcon.Response]):
    """Falcon's app, and the parts of it that serve and the tests look at."""

    def __init__(self, events: SlackEvents | None) -> None:
        super().__init__()
        self._events = events

    def __call__(self, env: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Falcon's answer, with header names in their usual case."""

        def cased(
            status: str,
            headers: list[tuple[str, str]],
            exc_info: tuple[type[BaseException], BaseException, TracebackType]
            | tuple[None, None, None]
            | None = None,
        ) -> Any:
            named = [(_NAMES.get(name) or name.title(), value) for name, value in headers]
            return start_response(status, named, exc_info)

        return super().__call__(env, cased)

    @property
    def slack(self) -> WSGIApplication | None:
        """bolt's WSGI handler, or None when Slack is off or in Socket Mode."""
        return None if self._events is None else self._events.bolt

    @property
    def slack_ingress(self) -> SlackIngress | None:
        """The gate in front of bolt (None without HTTP Slack)."""
        return None if self._events is None else self._events.ingress

    @slack_ingress.setter
    def slack_ingress(self, ingress: SlackIngress) -> None:
        if self._events is not None:
            self._events.ingress = ingress


def create_app(
    runtime: Runtime,
    *,
    slack: WSGIApplication | None = None,
    on_metrics: Callable[[], None] | None = None,
) -> HttpApp:
    """The WSGI app; `slack` is bolt's WSGI handler, None when Slack is off."""
    events = None
    if slack is not None:
        events = SlackEvents(slack, SlackIngress(runtime))
    app = HttpApp(events)
    # Paths are matched as they came: `/incidents/12/` is not `/incidents/12` (the
    # page tells them apart), and no body is parsed before the gate has seen it.
    app.req_options.strip_url_path_trailing_slash = False
    errors.install(app, refusals={health.PATH: health.REFUSAL, prometheus.PATH: prometheus.REFUSAL})
    # Sinks answer any method; the one added last is tried first.
    app.add_sink(pages.Pages(runtime.settings.page_dir), prefix="/")
    app.add_sink(metrics_api.MetricsApi(runtime, on_metrics), prefix=metrics_api.PREFIX)
    if events is None:
        app.add_sink(slack_off, prefix=SLACK_PATH + r"\Z")
    else:
        app.add_route(SLACK_PATH, events)
    app.add_route(health.PATH, health.Health(runtime))
    if runtime.settings.metrics:
        app.add_route(prometheus.PATH, prometheus.Metrics(runtime))
    # Routes are matched before any sink, so these win over the page's files.
    subscribe.register(app, runtime)
    v1.register(app, runtime)
    return app
