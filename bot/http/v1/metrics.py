"""`/v1/pages/{page_id}/metrics`: list metrics, and add points as Statuspage takes them.

Points end in commands/metrics.py's push_points, as `POST /api/metrics/NAME` does:
the same range, finiteness and not-in-the-future checks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.http.v1.body import Fields, Kind, unwrap
from bot.http.v1.route import ApiError, Call, Operation, Reply, Route, not_found
from commands.context import Context
from commands.metrics import push_points
from commands.result import Result
from storage import metrics as store

POINT = Fields("data", {"timestamp": Kind.TIME, "value": Kind.NUMBER})
EXAMPLE = '{"data": {"timestamp": 1760000000, "value": 12.3}}'
MAX_POINTS = 10_000


def list_metrics(call: Call) -> Reply:
    objects = call.objects

    def look(session: Session) -> list[dict[str, Any]]:
        return [objects.metric(store.info_of(session, m)) for m in store.all_metrics(session)]

    return Reply(200, call.read(look))


def get_metric(call: Call) -> Reply:
    code = call.params["metric_id"]
    objects = call.objects

    def look(session: Session) -> dict[str, Any]:
        metric = store.by_code(session, code)
        if metric is None:
            raise not_found("metric", code)
        return objects.metric(store.info_of(session, metric))

    return Reply(200, call.read(look))


def _point(item: object, where: str, now: datetime) -> tuple[datetime, float]:
    if not isinstance(item, dict):
        raise ApiError(422, f"{where} must be an object, e.g. {EXAMPLE}.")
    fields = POINT.check(item)
    if fields.get("value") is None:
        raise ApiError(422, f"{where}[value] is required, e.g. {EXAMPLE}.")
    return fields.get("timestamp") or now, fields["value"]


def _push(call: Call, batches: dict[str, list[tuple[datetime, float]]]) -> None:
    def change(session: Session, ctx: Context) -> Result:
        results = []
        for code, points in batches.items():
            metric = store.by_code(session, code)
            if metric is None:
                raise not_found("metric", code)
            results.append(push_points(session, ctx, name=metric.name, points=points))
        return Result(reply=" ".join(r.reply for r in results), changed=True)

    call.write(change, lambda session: None, what="metric data")


def add_data(call: Call) -> Reply:
    """One point: `{"data": {"timestamp": UNIX_SECONDS, "value": 12.3}}`."""
    code = call.params["metric_id"]
    data = unwrap(call.body(), "data", example=EXAMPLE)
    if not data:
        raise ApiError(422, f"Send a point, e.g. {EXAMPLE}.")
    at, value = _point(data, "data", call.runtime.clock())
    _push(call, {code: [(at, value)]})
    return Reply(201, {"data": {"timestamp": int(at.timestamp()), "value": value}})


def add_many(call: Call) -> Reply:
    """Points for several metrics: `{"data": {"METRIC_ID": [{"timestamp": …, "value": …}]}}`."""
    body = unwrap(
        call.body(), "data", example='{"data": {"METRIC_ID": [{"timestamp": …, "value": …}]}}'
    )
    now = call.runtime.clock()
    batches: dict[str, list[tuple[datetime, float]]] = {}
    total = 0
    for code, items in body.items():
        listed = items if isinstance(items, list) else [items]
        total += len(listed)
        if total > MAX_POINTS:
            raise ApiError(422, f"Send at most {MAX_POINTS:,} points per request.")
        batches[str(code)] = [
            _point(p, f"data[{str(code)[:20]}][{n}]", now) for n, p in enumerate(listed)
        ]
    if not batches:
        raise ApiError(422, "Send points for at least one metric.")
    _push(call, batches)
    shown = {
        code: [{"timestamp": int(at.timestamp()), "value": v} for at, v in points]
        for code, points in batches.items()
    }
    return Reply(201, shown)


ROUTES = (
    Route(
        "/pages/{page_id}/metrics",
        (
            Operation(
                "GET",
                list_metrics,
                "Get a list of metrics",
                "getPagesPageIdMetrics",
                200,
                "Metric[]",
            ),
        ),
    ),
    Route(
        "/pages/{page_id}/metrics/data",
        (
            Operation(
                "POST",
                add_many,
                "Add data points to metrics",
                "postPagesPageIdMetricsData",
                201,
                "MetricsData",
                "PostMetricsData",
            ),
        ),
    ),
    Route(
        "/pages/{page_id}/metrics/{metric_id}",
        (
            Operation(
                "GET", get_metric, "Get a metric", "getPagesPageIdMetricsMetricId", 200, "Metric"
            ),
        ),
    ),
    Route(
        "/pages/{page_id}/metrics/{metric_id}/data",
        (
            Operation(
                "POST",
                add_data,
                "Add data to a metric",
                "postPagesPageIdMetricsMetricIdData",
                201,
                "SingleMetricAddResponse",
                "PostMetricData",
            ),
        ),
    ),
)
