"""`/v1/pages` and `/v1/pages/{page_id}`: the one page statusbot serves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.http.v1.route import Call, Operation, Reply, Route
from storage.models import Component, Incident

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _page(call: Call) -> dict[str, Any]:
    objects = call.objects

    def look(session: Session) -> dict[str, Any]:
        times = [
            session.scalar(select(func.min(Component.created_at))),
            session.scalar(select(func.min(Incident.created_at))),
        ]
        changed = [
            session.scalar(select(func.max(Component.updated_at))),
            session.scalar(select(func.max(Incident.updated_at))),
        ]
        created = min((t for t in times if t is not None), default=EPOCH)
        updated = max((t for t in changed if t is not None), default=created)
        return objects.page(created_at=objects.time(created), updated_at=objects.time(updated))

    return call.read(look)


def list_pages(call: Call) -> Reply:
    return Reply(200, [_page(call)])


def get_page(call: Call) -> Reply:
    return Reply(200, _page(call))


ROUTES = (
    Route(
        "/pages", (Operation("GET", list_pages, "Get a list of pages", "getPages", 200, "Page[]"),)
    ),
    Route(
        "/pages/{page_id}",
        (Operation("GET", get_page, "Get a page", "getPagesPageId", 200, "Page"),),
    ),
)
