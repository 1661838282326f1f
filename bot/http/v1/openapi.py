"""`/v1/openapi.json`: the OpenAPI 3 document of what statusbot's v1 API implements.

Built from the route table (bot/http/v1/__init__.py's ROUTES) and the field tables
the routes check bodies with, and the response schemas from the v1 renderer's own
output for sample values, so the document can't drift from the code: a test checks
that every route in it exists in the app and every /v1 route in the app is in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from bot.http.v1 import components, incidents, metrics, postmortems, subscribers, templates
from bot.http.v1.body import Fields, Kind
from bot.http.v1.route import Route
from renderers.v1 import V1
from storage.metrics import MetricInfo
from storage.postmortems import Record
from storage.snapshot import (
    AffectedView,
    ChangeView,
    ComponentView,
    GroupView,
    IncidentView,
    PageInfo,
    UpdateView,
)
from storage.subscribers import SubscriberView
from storage.templates import TemplateView

Json = dict[str, Any]
PATH = "/v1/openapi.json"
_AT = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)
_TYPES: dict[Kind, Json] = {
    Kind.TEXT: {"type": "string"},
    Kind.BOOL: {"type": "boolean"},
    Kind.INT: {"type": "integer"},
    Kind.NUMBER: {"type": "number"},
    Kind.TIME: {"type": "string", "format": "date-time"},
    Kind.IDS: {"type": "array", "items": {"type": "string"}},
    Kind.STATUSES: {
        "type": "object",
        "additionalProperties": {"type": "string", "enum": components.STATUSES.split(", ")},
    },
}


def document(routes: Sequence[Route], *, base_url: str, title: str) -> Json:
    """The OpenAPI 3.0 document for these routes."""
    paths: Json = {}
    for route in routes:
        item: Json = {}
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(route.path)
        ]
        for op in route.operations:
            item[op.method.lower()] = _operation(op, params)
        paths[route.path] = item
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"{title} (statusbot): Statuspage v1-compatible API",
            "version": "1.0.0",
            "description": "The subset of Statuspage's manage API that statusbot implements.",
        },
        "servers": [{"url": base_url.rstrip("/") + "/v1"}],
        "security": [{"api_key": []}, {"bearer": []}, {"api_key_query": []}],
        "paths": paths,
        "components": {"securitySchemes": _SECURITY, "schemas": schemas()},
    }


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _operation(op: Any, params: list[Json]) -> Json:
    query = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": _QUERY.get(name, {"type": "string"}),
        }
        for name in op.query
    ]
    out: Json = {
        "summary": op.summary,
        "operationId": op.operation_id,
        "parameters": params + query,
        "responses": {
            str(op.status): _response(op.response),
            "400": _error("Bad request"),
            "401": _error("Could not authenticate"),
            "404": _error("The requested resource could not be found."),
            "422": _error("Unprocessable entity"),
            "429": _error("Rate limited; see Retry-After"),
        },
    }
    if op.request:
        ref = {"$ref": f"#/components/schemas/{op.request}"}
        out["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": ref},
                "application/x-www-form-urlencoded": {"schema": ref},
            },
        }
    return out


_QUERY = {
    "page": {"type": "integer"},
    "per_page": {"type": "integer"},
    "limit": {"type": "integer"},
}


def _response(name: str) -> Json:
    if not name:
        return {"description": "Done; no body"}
    if name.endswith("[]"):
        schema: Json = {"type": "array", "items": {"$ref": f"#/components/schemas/{name[:-2]}"}}
    else:
        schema = {"$ref": f"#/components/schemas/{name}"}
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def _error(text: str) -> Json:
    return {
        "description": text,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_SECURITY = {
    "api_key": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "`OAuth KEY`, as Statuspage takes it",
    },
    "bearer": {"type": "http", "scheme": "bearer"},
    "api_key_query": {"type": "apiKey", "in": "query", "name": "api_key"},
}


def _body(fields: Fields, *, required: Sequence[str] = ()) -> Json:
    inner: Json = {
        "type": "object",
        "properties": {name: dict(_TYPES[kind]) for name, kind in fields.types.items()},
        "additionalProperties": False,
    }
    if required:
        inner["required"] = list(required)
    return {
        "type": "object",
        "properties": {fields.name: inner},
        "required": [fields.name],
        "additionalProperties": False,
    }


def _shape(full: object, empty: object) -> Json:
    """A schema from two renderings of one object: with every value, and with none."""
    if isinstance(full, bool):
        return {"type": "boolean"}
    if isinstance(full, int):
        return {"type": "integer"}
    if isinstance(full, float):
        return {"type": "number"}
    if isinstance(full, str):
        return {"type": "string"}
    if isinstance(full, list):
        item = full[0] if full else ""
        other = empty[0] if isinstance(empty, list) and empty else item
        return {"type": "array", "items": _shape(item, other)}
    if isinstance(full, dict):
        assert isinstance(empty, dict)
        props: Json = {}
        for key, value in full.items():
            shaped = _shape(value, empty.get(key))
            if empty.get(key) is None or value is None:
                shaped["nullable"] = True
            props[key] = shaped
        # Every field is always there (null when it does not apply), as on Statuspage.
        required = [key for key in full if key in empty]
        shape: Json = {"type": "object", "properties": props}
        if required:  # OpenAPI 3.0 wants a list of at least one
            shape["required"] = required
        return shape
    return {"type": "string"}


def schemas() -> Json:
    """Every schema the document names."""
    full, empty = _samples(filled=True), _samples(filled=False)
    out: Json = {name: _shape(full[name], empty[name]) for name in full}
    out["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
    }
    out["PostIncident"] = _body(incidents.INCIDENT, required=["name"])
    out["PatchIncident"] = _body(incidents.INCIDENT)
    out["PatchIncidentUpdate"] = _body(incidents.UPDATE)
    out["PutPostmortem"] = _body(postmortems.DRAFT, required=["body_draft"])
    out["PutPostmortemPublish"] = _body(postmortems.PUBLISH)
    out["PostIncidentTemplate"] = _body(templates.TEMPLATE, required=["name", "title"])
    out["PostComponent"] = _body(components.COMPONENT, required=["name"])
    out["PatchComponent"] = _body(components.COMPONENT)
    group = _body(components.GROUP, required=["name", "components"])
    group["properties"]["description"] = {"type": "string"}
    out["PostComponentGroup"] = group
    out["PostSubscriber"] = _body(subscribers.SUBSCRIBER, required=["email"])
    out["PatchSubscriber"] = {
        "type": "object",
        "properties": {"component_ids": _TYPES[Kind.IDS]},
        "required": ["component_ids"],
    }
    out["PostMetricData"] = _body(metrics.POINT, required=["value"])
    out["SingleMetricAddResponse"] = {
        "type": "object",
        "properties": {
            "data": {
                "type": "object",
                "properties": {"timestamp": {"type": "integer"}, "value": {"type": "number"}},
            }
        },
    }
    point = out["SingleMetricAddResponse"]["properties"]["data"]
    out["PostMetricsData"] = {
        "type": "object",
        "properties": {
            "data": {"type": "object", "additionalProperties": {"type": "array", "items": point}}
        },
        "required": ["data"],
    }
    out["MetricsData"] = {
        "type": "object",
        "additionalProperties": {"type": "array", "items": point},
    }
    return out


def _samples(*, filled: bool) -> Json:
    """The v1 renderer's output for sample values: every optional value set, or none."""
    page = PageInfo(id="abc", name="Example", url="https://status.example.com", time_zone="UTC")
    objects = V1(page, page_id="abc")
    at = _AT if filled else None
    text = "text" if filled else None
    component = ComponentView(
        code="c1",
        name="API",
        description=text,
        position=1,
        status="operational",
        group_code="g1" if filled else None,
        showcase=True,
        only_show_if_degraded=False,
        start_date=date(2026, 6, 10) if filled else None,
        created_at=_AT,
        updated_at=_AT,
    )
    group = GroupView(
        code="g1",
        name="Backend",
        description=text,
        position=1,
        status="operational",
        created_at=_AT,
        updated_at=_AT,
        components=(component,) if filled else (),
    )
    affected = AffectedView(
        code="c1",
        name="API",
        status="major_outage",
        group_code="g1" if filled else None,
        position=1,
        showcase=True,
        description=text,
        created_at=_AT,
        updated_at=_AT,
        start_date=date(2026, 6, 10) if filled else None,
    )
    change = ChangeView(code="c1", name="API", old_status="operational", new_status="major_outage")
    update = UpdateView(
        code="u1",
        status="investigating",
        body="Looking.",
        display_at=_AT,
        created_at=_AT,
        updated_at=_AT,
        deliver_notifications=True,
        changes=(change,) if filled else (),
    )
    incident = IncidentView(
        number=1,
        kind="maintenance" if filled else "incident",
        title="API errors",
        status="investigating",
        impact="major",
        created_at=_AT,
        updated_at=_AT,
        started_at=_AT,
        monitoring_at=at,
        resolved_at=at,
        scheduled_for=at,
        scheduled_until=at,
        auto=True,
        components=(affected,),
        updates=(update,),
        impact_override=filled,
    )
    incident_body = objects.v1_incident(incident)
    if filled:  # an incident's impact_override is set; a maintenance's never is
        incident_body["impact_override"] = "major"
    subscriber = SubscriberView(
        code="s1",
        kind="email",
        email="ops@example.com",
        endpoint="https://hooks.example.com/x" if filled else None,
        components=("c1",) if filled else (),
        created_at=_AT,
        confirmed_at=at,
        quarantined_at=at,
        unsubscribed_at=at,
    )
    metric = MetricInfo(
        code="m1", name="Latency", unit="ms", description=text, created_at=_AT, last_at=at
    )
    postmortem = Record(
        body="## What happened",
        created_at=_AT,
        body_updated_at=_AT,
        published_at=at,
        notified_at=at,
    )
    template = TemplateView(
        code="t1",
        name="db-failover",
        title="Database failover",
        status="investigating",
        body="Failing over.",
        components=(component,),
    )
    updates = incident_body["incident_updates"]
    assert isinstance(updates, list)
    return {
        "Postmortem": objects.postmortem_object(postmortem),
        "IncidentTemplate": objects.template(template),
        "Page": objects.page(created_at=objects.time(at), updated_at=objects.time(at)),
        "Component": objects.v1_component(component),
        "GroupComponent": objects.v1_group(group),
        "Incident": incident_body,
        "IncidentUpdate": updates[0],
        "Subscriber": objects.subscriber(subscriber),
        "Metric": objects.metric(metric),
    }
