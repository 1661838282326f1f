"""`/v1/pages/{page_id}/incidents…`: Statuspage's incident and maintenance routes.

Statuspage keeps incidents and scheduled maintenances in one list; so does statusbot
(one number sequence). A body with `scheduled_for` schedules a maintenance. Writes end
in commands/incident.py and commands/maintenance.py: open, update, resolve, reopen,
edit, schedule, move, delete, and edit an update.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from bot.http.v1.body import BadRequest, Fields, Kind, unwrap
from bot.http.v1.components import components_named, status_of
from bot.http.v1.route import ApiError, Call, Operation, Reply, Route, combined, not_found
from commands import incident as uc
from commands import maintenance as mc
from commands.context import Context
from commands.result import Result
from storage import incidents as store
from storage.models import Component, Incident
from storage.rules import ComponentStatus, Impact, IncidentStatus, MaintenanceStatus
from storage.rules import Kind as Sort
from storage.snapshot import incident_view

_IGNORED = frozenset(
    {
        "metadata",
        "auto_transition_deliver_notifications_at_end",
        "auto_transition_deliver_notifications_at_start",
        "auto_transition_to_maintenance_state",
        "auto_transition_to_operational_state",
        "auto_tweet_at_beginning",
        "auto_tweet_on_completion",
        "auto_tweet_on_creation",
        "auto_tweet_one_hour_before",
        "reminder_intervals",
    }
)
INCIDENT = Fields(
    "incident",
    {
        "name": Kind.TEXT,
        "status": Kind.TEXT,
        "impact_override": Kind.TEXT,
        "body": Kind.TEXT,
        "message": Kind.TEXT,  # Statuspage's older name for body
        "component_ids": Kind.IDS,
        "components": Kind.STATUSES,
        "deliver_notifications": Kind.BOOL,
        "scheduled_for": Kind.TIME,
        "scheduled_until": Kind.TIME,
        "scheduled_remind_prior": Kind.BOOL,
        "scheduled_auto_in_progress": Kind.BOOL,
        "scheduled_auto_completed": Kind.BOOL,
        "scheduled_auto_transition": Kind.BOOL,
        "backfilled": Kind.BOOL,
        "backfill_date": Kind.TIME,
    },
    ignored=_IGNORED,
)
UPDATE = Fields(
    "incident_update",
    {"body": Kind.TEXT, "display_at": Kind.TIME, "deliver_notifications": Kind.BOOL},
    ignored=frozenset({"wants_twitter_update", "tweet_id", "custom_tweet"}),
)
EXAMPLE = '{"incident": {"name": "API errors", "status": "investigating", "body": "…"}}'
UPDATE_EXAMPLE = '{"incident_update": {"body": "…"}}'
# What an update says when a client changes only the status, as Statuspage's defaults do.
STATUS_BODY = {
    IncidentStatus.INVESTIGATING: "We are currently investigating this issue.",
    IncidentStatus.IDENTIFIED: "The issue has been identified and a fix is being implemented.",
    IncidentStatus.MONITORING: "A fix has been implemented and we are monitoring the results.",
}
VERBS = {
    MaintenanceStatus.IN_PROGRESS: "start",
    MaintenanceStatus.COMPLETED: "complete",
    MaintenanceStatus.CANCELLED: "cancel",
}
LIMIT = 100


def _choice(
    value: str, enum: type[StrEnum], where: str, *, allowed: list[Any] | None = None
) -> Any:
    options: list[Any] = allowed if allowed is not None else list(enum)
    try:
        chosen = enum(value)
    except ValueError:
        chosen = None
    if chosen is None or chosen not in options:
        listing = ", ".join(o.value for o in options)
        raise BadRequest(422, f"{where} must be one of {listing}; got {value[:60]!r}.")
    return chosen


def _fields(call: Call) -> dict[str, Any]:
    fields = INCIDENT.check(unwrap(call.body(), "incident", example=EXAMPLE))
    if "message" in fields and "body" not in fields:
        fields["body"] = fields["message"]
    fields.pop("message", None)
    return fields


def incident_number(call: Call) -> int:
    given = call.params["incident_id"]
    if not given.isdigit() or len(given) > 9:
        raise not_found("incident", given)
    return int(given)


def found_incident(session: Session, number: int, *, for_update: bool = False) -> Incident:
    """A public incident or maintenance: a draft (which Statuspage has no notion of) is
    not there for the API, as it is not on the page, until it is published."""
    found = store.get(session, number=number, for_update=for_update)
    if found is None or found.draft:
        raise not_found("incident", str(number))
    return found


def _changes(session: Session, fields: dict[str, Any]) -> list[tuple[Component, ComponentStatus]]:
    """The components named by `components` {id: status} and `component_ids` (those
    keep their status: they are affected, not changed)."""
    states = fields.get("components") or {}
    wanted = {
        code: status_of(s, f"incident[components][{code[:40]}]") for code, s in states.items()
    }
    codes = list(dict.fromkeys([*wanted, *(fields.get("component_ids") or [])]))
    found = components_named(session, codes, "incident[component_ids]")
    return [(c, wanted.get(c.code) or ComponentStatus(c.status)) for c in found]


# --- reading ---------------------------------------------------------------------------


def _listing(call: Call, **where: Any) -> Reply:
    objects = call.objects
    text = call.query("q")
    limit = whole_number(call.query("limit"), "limit", LIMIT)
    page = whole_number(call.query("page"), "page", 1, top=1_000_000)
    per_page = whole_number(call.query("per_page"), "per_page", limit)

    def look(session: Session) -> list[dict[str, Any]]:
        size = min(limit, per_page)
        rows = store.search(
            session,
            text=text[:200] if text else None,
            limit=size,
            offset=(page - 1) * size,
            **where,
        )
        return objects.v1_incidents(incident_view(i) for i in rows)

    return Reply(200, call.read(look))


def whole_number(text: str | None, name: str, default: int, *, top: int = LIMIT) -> int:
    if text is None or text == "":
        return default
    if not text.isdigit() or not 1 <= int(text) <= top:
        raise ApiError(400, f"{name} must be a whole number from 1 to {top}; got {text[:20]!r}.")
    return int(text)


def list_incidents(call: Call) -> Reply:
    return _listing(call)


def unresolved(call: Call) -> Reply:
    open_statuses = [s.value for s in IncidentStatus if s is not IncidentStatus.RESOLVED]
    return _listing(call, kind=Sort.INCIDENT, statuses=open_statuses)


def scheduled(call: Call) -> Reply:
    return _listing(call, kind=Sort.MAINTENANCE)


def upcoming(call: Call) -> Reply:
    return _listing(
        call,
        kind=Sort.MAINTENANCE,
        statuses=[MaintenanceStatus.SCHEDULED.value],
        soonest_first=True,
    )


def active_maintenance(call: Call) -> Reply:
    active = [MaintenanceStatus.IN_PROGRESS.value, MaintenanceStatus.VERIFYING.value]
    return _listing(call, kind=Sort.MAINTENANCE, statuses=active)


def get_incident(call: Call) -> Reply:
    number = incident_number(call)
    objects = call.objects

    def look(session: Session) -> dict[str, Any]:
        found = found_incident(session, number)
        return objects.v1_incident(incident_view(found))

    return Reply(200, call.read(look))


def _shown(call: Call, numbers: list[int]) -> Callable[[Session], dict[str, Any]]:
    """What a write answers: the incident as it now is (re-read, in the same transaction)."""
    objects = call.objects

    def view(session: Session) -> dict[str, Any]:
        found = store.get(session, number=numbers[0], for_update=True)
        assert found is not None  # the use case just wrote it
        return objects.v1_incident(incident_view(found))

    return view


# --- writing ---------------------------------------------------------------------------


def create_incident(call: Call) -> Reply:
    fields = _fields(call)
    if not fields.get("name"):
        raise ApiError(422, f"incident[name] is required, e.g. {EXAMPLE}.")
    maintenance = any(fields.get(k) for k in ("scheduled_for", "scheduled_until"))
    numbers: list[int] = []

    def change(session: Session, ctx: Context) -> Result:
        result = _schedule(session, ctx, fields) if maintenance else _open(session, ctx, fields)
        assert result.number is not None or not result.ok
        if result.number is not None:
            numbers.append(result.number)
        return result

    return Reply(201, call.write(change, _shown(call, numbers), what="create incident"))


def _open(session: Session, ctx: Context, fields: dict[str, Any]) -> Result:
    notify = fields.get("deliver_notifications") is not False
    status = IncidentStatus.INVESTIGATING
    if fields.get("status"):
        status = _choice(fields["status"], IncidentStatus, "incident[status]")
    impact = None
    if fields.get("impact_override"):
        allowed = [i for i in Impact if i is not Impact.MAINTENANCE]
        impact = _choice(
            fields["impact_override"], Impact, "incident[impact_override]", allowed=allowed
        )
    at: datetime | None = None
    if fields.get("backfilled"):
        # A past incident put on the record: not news, so nobody is told, and it is over.
        if fields.get("components"):
            raise ApiError(422, "A backfilled incident can't set components (as on Statuspage).")
        at = fields.get("backfill_date") or ctx.now
        notify = False
        status = IncidentStatus.RESOLVED
    opened = uc.open_incident(
        session,
        ctx,
        title=fields["name"],
        message=fields.get("body"),
        status=IncidentStatus.INVESTIGATING if status is IncidentStatus.RESOLVED else status,
        impact=impact,
        components=_changes(session, fields),
        at=at,
        notify=notify,
    )
    if status is not IncidentStatus.RESOLVED:
        return opened
    assert opened.number is not None
    resolved = uc.resolve_incident(session, ctx, number=opened.number, at=at, notify=notify)
    return combined(opened, resolved)


def _schedule(session: Session, ctx: Context, fields: dict[str, Any]) -> Result:
    start, end = fields.get("scheduled_for"), fields.get("scheduled_until")
    if start is None or end is None:
        raise ApiError(
            422,
            "A scheduled maintenance needs both incident[scheduled_for] and "
            "incident[scheduled_until].",
        )
    status = MaintenanceStatus.SCHEDULED
    if fields.get("status"):
        allowed = [MaintenanceStatus.SCHEDULED, MaintenanceStatus.IN_PROGRESS]
        status = _choice(fields["status"], MaintenanceStatus, "incident[status]", allowed=allowed)
    flags = [
        fields.get(k)
        for k in (
            "scheduled_auto_in_progress",
            "scheduled_auto_completed",
            "scheduled_auto_transition",
        )
    ]
    auto = any(flags) or all(f is None for f in flags)
    notify = fields.get("deliver_notifications") is not False
    if fields.get("components"):
        raise ApiError(
            422,
            "A maintenance puts its components under maintenance when it starts: list them in "
            "incident[component_ids].",
        )
    scheduled_result = mc.schedule_maintenance(
        session,
        ctx,
        title=fields["name"],
        start=start,
        end=end,
        components=[c for c, _ in _changes(session, fields)],
        auto=auto,
        message=fields.get("body"),
        notify=notify,
    )
    if status is MaintenanceStatus.SCHEDULED:
        return scheduled_result
    assert scheduled_result.number is not None
    started = mc.move_maintenance(
        session, ctx, number=scheduled_result.number, status=status, verb="start", notify=notify
    )
    return combined(scheduled_result, started)


def update_incident(call: Call) -> Reply:
    number = incident_number(call)
    fields = _fields(call)
    for fixed in ("backfilled", "backfill_date"):
        if fields.get(fixed):
            raise ApiError(
                422, f"incident[{fixed}] is set when an incident is made; it can't change."
            )

    def change(session: Session, ctx: Context) -> Result:
        found = found_incident(session, number, for_update=True)
        results: list[Result] = []
        kind = Sort(found.kind)
        if fields.get("name") is not None and fields["name"].strip() != found.title:
            results.append(
                uc.edit_title(session, ctx, number=number, title=fields["name"], kind=kind)
            )
        if kind is Sort.MAINTENANCE:
            results += _move(session, ctx, found, fields)
        else:
            results += _progress(session, ctx, found, fields)
        return combined(*results)

    return Reply(200, call.write(change, _shown(call, [number]), what="update incident"))


def _progress(
    session: Session, ctx: Context, found: Incident, fields: dict[str, Any]
) -> list[Result]:
    number, notify = found.number, fields.get("deliver_notifications") is not False
    status = (
        _choice(fields["status"], IncidentStatus, "incident[status]")
        if fields.get("status")
        else None
    )
    impact = None
    if fields.get("impact_override"):
        allowed = [i for i in Impact if i is not Impact.MAINTENANCE]
        impact = _choice(
            fields["impact_override"], Impact, "incident[impact_override]", allowed=allowed
        )
    changes = _changes(session, fields)
    body = fields.get("body")
    results: list[Result] = []
    current = IncidentStatus(found.status)
    if status is IncidentStatus.RESOLVED and current is not IncidentStatus.RESOLVED:
        return [uc.resolve_incident(session, ctx, number=number, message=body, notify=notify)]
    if current is IncidentStatus.RESOLVED and status is not None and status is not current:
        results.append(uc.reopen_incident(session, ctx, number=number, message=body, notify=notify))
        if not (changes or impact) and status.value == found.status:
            return results
        body = None
    if status is None and body is None and not changes and impact is None:
        return results
    message = body or STATUS_BODY.get(status or IncidentStatus(found.status))
    results.append(
        uc.update_incident(
            session,
            ctx,
            number=number,
            message=message,
            status=status,
            impact=impact,
            components=changes,
            notify=notify,
        )
    )
    return results


def _move(session: Session, ctx: Context, found: Incident, fields: dict[str, Any]) -> list[Result]:
    for moved in ("scheduled_for", "scheduled_until"):
        given = fields.get(moved)
        if given is not None and given != getattr(found, moved):
            raise ApiError(
                422,
                f"statusbot can't move a maintenance window yet (incident[{moved}]): cancel it "
                "and schedule a new one.",
            )
    if fields.get("components") or fields.get("component_ids") or fields.get("impact_override"):
        raise ApiError(422, "A maintenance's components and impact are set when it is scheduled.")
    notify = fields.get("deliver_notifications") is not False
    current = MaintenanceStatus(found.status)
    status = current
    if fields.get("status"):
        status = _choice(fields["status"], MaintenanceStatus, "incident[status]")
    if status is current and not fields.get("body"):
        return []
    verb = VERBS.get(status, "update") if status is not current else "update"
    return [
        mc.move_maintenance(
            session,
            ctx,
            number=found.number,
            status=status,
            message=fields.get("body"),
            verb=verb,
            notify=notify,
        )
    ]


def delete_incident(call: Call) -> Reply:
    number = incident_number(call)
    objects = call.objects
    shown: list[dict[str, Any]] = []

    def change(session: Session, ctx: Context) -> Result:
        found = found_incident(session, number, for_update=True)
        shown.append(objects.v1_incident(incident_view(found)))
        return uc.delete_incident(session, ctx, number=number, kind=Sort(found.kind))

    call.write(change, lambda session: None, what="delete incident")
    return Reply(200, shown[0])


def update_incident_update(call: Call) -> Reply:
    number = incident_number(call)
    code = call.params["incident_update_id"]
    fields = UPDATE.check(unwrap(call.body(), "incident_update", example=UPDATE_EXAMPLE))
    objects = call.objects

    def change(session: Session, ctx: Context) -> Result:
        found = found_incident(session, number, for_update=True)
        index = next((n for n, u in enumerate(found.updates) if u.code == code), None)
        if index is None:
            raise not_found("incident update", code)
        if not fields:
            raise ApiError(422, f"Send what to change, e.g. {UPDATE_EXAMPLE}.")
        return uc.edit_update(
            session,
            ctx,
            number=number,
            update=index + 1,
            body=fields.get("body"),
            kind=Sort(found.kind),
            display_at=fields.get("display_at"),
            deliver_notifications=fields.get("deliver_notifications"),
        )

    def view(session: Session) -> dict[str, Any]:
        found = store.get(session, number=number)
        assert found is not None
        shown = objects.v1_incident(incident_view(found))
        updates = shown["incident_updates"]
        assert isinstance(updates, list)
        return next(u for u in updates if u["id"] == code)

    return Reply(200, call.write(change, view, what="update incident update"))


_ONE = "/pages/{page_id}/incidents/{incident_id}"
ROUTES = (
    Route(
        "/pages/{page_id}/incidents",
        (
            Operation(
                "GET",
                list_incidents,
                "Get a list of incidents",
                "getPagesPageIdIncidents",
                200,
                "Incident[]",
                query=("q", "limit", "page"),
            ),
            Operation(
                "POST",
                create_incident,
                "Create an incident",
                "postPagesPageIdIncidents",
                201,
                "Incident",
                "PostIncident",
            ),
        ),
    ),
    Route(
        "/pages/{page_id}/incidents/unresolved",
        (
            Operation(
                "GET",
                unresolved,
                "Get a list of unresolved incidents",
                "getPagesPageIdIncidentsUnresolved",
                200,
                "Incident[]",
                query=("page", "per_page"),
            ),
        ),
    ),
    Route(
        "/pages/{page_id}/incidents/scheduled",
        (
            Operation(
                "GET",
                scheduled,
                "Get a list of scheduled incidents",
                "getPagesPageIdIncidentsScheduled",
                200,
                "Incident[]",
                query=("page", "per_page"),
            ),
        ),
    ),
    Route(
        "/pages/{page_id}/incidents/upcoming",
        (
            Operation(
                "GET",
                upcoming,
                "Get a list of upcoming incidents",
                "getPagesPageIdIncidentsUpcoming",
                200,
                "Incident[]",
                query=("page", "per_page"),
            ),
        ),
    ),
    Route(
        "/pages/{page_id}/incidents/active_maintenance",
        (
            Operation(
                "GET",
                active_maintenance,
                "Get a list of active maintenances",
                "getPagesPageIdIncidentsActiveMaintenance",
                200,
                "Incident[]",
                query=("page", "per_page"),
            ),
        ),
    ),
    Route(
        _ONE,
        (
            Operation(
                "GET",
                get_incident,
                "Get an incident",
                "getPagesPageIdIncidentsIncidentId",
                200,
                "Incident",
            ),
            Operation(
                "PATCH",
                update_incident,
                "Update an incident",
                "patchPagesPageIdIncidentsIncidentId",
                200,
                "Incident",
                "PatchIncident",
            ),
            Operation(
                "PUT",
                update_incident,
                "Update an incident",
                "putPagesPageIdIncidentsIncidentId",
                200,
                "Incident",
                "PatchIncident",
            ),
            Operation(
                "DELETE",
                delete_incident,
                "Delete an incident",
                "deletePagesPageIdIncidentsIncidentId",
                200,
                "Incident",
            ),
        ),
    ),
    Route(
        _ONE + "/incident_updates/{incident_update_id}",
        (
            Operation(
                "PATCH",
                update_incident_update,
                "Update a previous incident update",
                "patchPagesPageIdIncidentsIncidentIdIncidentUpdatesIncidentUpdateId",
                200,
                "IncidentUpdate",
                "PatchIncidentUpdate",
            ),
            Operation(
                "PUT",
                update_incident_update,
                "Update a previous incident update",
                "putPagesPageIdIncidentsIncidentIdIncidentUpdatesIncidentUpdateId",
                200,
                "IncidentUpdate",
                "PatchIncidentUpdate",
            ),
        ),
    ),
)
