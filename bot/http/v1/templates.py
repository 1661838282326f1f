"""`/v1/pages/{page_id}/incident_templates`: Statuspage's incident template routes.

List them (by name, `page` and `per_page` as Statuspage pages them) and create one.
Creating ends in commands/templates.py, as `/template add` does in Slack: the same
name rule (one word), title and message limits, and audit.

A Statuspage template lists the components it affects (`component_ids`); a statusbot
template also says what state it puts each in. `components` ({id: status}, as an
incident takes it) gives states; a component only in `component_ids` gets major_outage.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bot.http.v1.body import Fields, Kind, unwrap
from bot.http.v1.components import components_named, status_of
from bot.http.v1.incidents import LIMIT, whole_number
from bot.http.v1.route import ApiError, Call, Operation, Reply, Route
from commands import templates as uc
from commands.context import Context
from commands.result import Result
from storage import templates as store
from storage.rules import ComponentStatus, IncidentStatus

TEMPLATE = Fields(
    "template",
    {
        "name": Kind.TEXT,
        "title": Kind.TEXT,
        "body": Kind.TEXT,
        "update_status": Kind.TEXT,
        "component_ids": Kind.IDS,
        "components": Kind.STATUSES,
    },
    # Template groups and Twitter are not in statusbot; a template's incidents notify
    # as any incident does (deliver_notifications when it is opened).
    ignored=frozenset({"group_id", "should_tweet", "should_send_notifications"}),
)
EXAMPLE = (
    '{"template": {"name": "db-failover", "title": "Database failover", "body": "…", '
    '"component_ids": ["ID"]}}'
)
STATUSES = [IncidentStatus.INVESTIGATING, IncidentStatus.IDENTIFIED, IncidentStatus.MONITORING]
DEFAULT_STATE = ComponentStatus.MAJOR


def list_templates(call: Call) -> Reply:
    page = whole_number(call.query("page"), "page", 1, top=1_000_000)
    per_page = whole_number(call.query("per_page"), "per_page", LIMIT)
    objects = call.objects

    def look(session: Session) -> list[dict[str, Any]]:
        found = store.page(session, limit=per_page, offset=(page - 1) * per_page)
        return [objects.template(store.view(session, t)) for t in found]

    return Reply(200, call.read(look))


def create_template(call: Call) -> Reply:
    fields = TEMPLATE.check(unwrap(call.body(), "template", example=EXAMPLE))
    for needed in ("name", "title"):
        if not (fields.get(needed) or "").strip():
            raise ApiError(422, f"template[{needed}] is required, e.g. {EXAMPLE}.")
    status = IncidentStatus.INVESTIGATING
    if fields.get("update_status"):
        given = fields["update_status"]
        if given not in {s.value for s in STATUSES}:
            listing = ", ".join(s.value for s in STATUSES)
            raise ApiError(
                422, f"template[update_status] must be one of {listing}; got {given[:60]!r}."
            )
        status = IncidentStatus(given)
    states = {
        code: status_of(s, f"template[components][{code[:40]}]")
        for code, s in (fields.get("components") or {}).items()
    }
    codes = list(dict.fromkeys([*states, *(fields.get("component_ids") or [])]))
    name = fields["name"].strip()
    objects = call.objects

    def change(session: Session, ctx: Context) -> Result:
        found = components_named(session, codes, "template[component_ids]")
        return uc.add_template(
            session,
            ctx,
            name=name,
            title=fields["title"],
            status=status,
            components=[(c, states.get(c.code, DEFAULT_STATE)) for c in found],
            body=fields.get("body"),
        )

    def view(session: Session) -> dict[str, Any]:
        made = store.get(session, name)
        assert made is not None  # the use case just made it
        return objects.template(store.view(session, made))

    return Reply(201, call.write(change, view, what="create template"))


ROUTES = (
    Route(
        "/pages/{page_id}/incident_templates",
        (
            Operation(
                "GET",
                list_templates,
                "Get a list of templates",
                "getPagesPageIdIncidentTemplates",
                200,
                "IncidentTemplate[]",
                query=("page", "per_page"),
            ),
            Operation(
                "POST",
                create_template,
                "Create a template",
                "postPagesPageIdIncidentTemplates",
                201,
                "IncidentTemplate",
                "PostIncidentTemplate",
            ),
        ),
    ),
)
