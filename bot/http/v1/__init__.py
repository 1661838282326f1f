"""The REST API (SPEC §10): Statuspage's v1 manage API under `/v1`, one module per family.

`ROUTES` is the table every route is added from, and the OpenAPI document is built
from: pages, components and component groups, incidents (with maintenances and
incident updates), postmortems, incident templates, subscribers, metrics. A family is
a module with its own ROUTES, joined here; the document follows.
"""

from __future__ import annotations

from typing import Any

import falcon

from bot.http.v1 import (
    components,
    incidents,
    metrics,
    pages,
    postmortems,
    subscribers,
    templates,
)
from bot.http.v1.openapi import PATH as OPENAPI_PATH
from bot.http.v1.openapi import document
from bot.http.v1.route import Reply, Resource, Route, answer
from bot.runtime import Runtime

PREFIX = "/v1"
ROUTES: tuple[Route, ...] = (
    *pages.ROUTES,
    *components.ROUTES,
    *incidents.ROUTES,
    *postmortems.ROUTES,
    *templates.ROUTES,
    *subscribers.ROUTES,
    *metrics.ROUTES,
)


class OpenApi:
    """The document, public like Statuspage's own (it says nothing about the data)."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.body = document(ROUTES, base_url=settings.app_url, title=settings.page_name)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        answer(resp, Reply(200, self.body))


def not_found(req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
    """Any other path under /v1: Statuspage's JSON 404, not the page's HTML one."""
    answer(resp, Reply(404, {"error": "There is no such route in the v1 API; see " + OPENAPI_PATH}))


def register(app: falcon.App[Any, Any], runtime: Runtime) -> None:
    """Add every v1 route, the OpenAPI document, and the JSON 404 for the rest."""
    app.add_sink(not_found, prefix=PREFIX + "/")
    for route in ROUTES:
        app.add_route(PREFIX + route.path, Resource(runtime, route))
    app.add_route(OPENAPI_PATH, OpenApi(runtime))
