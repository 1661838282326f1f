"""`/v1/pages/{page_id}/incidents/{incident_id}/postmortem…`: Statuspage's postmortem routes.

Get it, write its draft (`PUT …/postmortem` with `body_draft`), publish it (`PUT
…/publish`, `notify_subscribers` tells subscribers once), revert it (`PUT …/revert`).
Writes end in commands/postmortems.py, as `/incident postmortem` does in Slack.

statusbot keeps one text per postmortem: a draft until published; rewriting a published
one changes what the page shows at once (Statuspage keeps the new draft aside until it
is published again), so publishing a published postmortem again changes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bot.http.v1.body import Fields, Kind, unwrap
from bot.http.v1.incidents import found_incident, incident_number
from bot.http.v1.route import ApiError, Call, Operation, Reply, Route
from commands import postmortems as uc
from commands.context import Context
from commands.result import Result
from storage import postmortems as store

DRAFT = Fields("postmortem", {"body_draft": Kind.TEXT})
PUBLISH = Fields(
    "postmortem",
    {"notify_subscribers": Kind.BOOL},
    ignored=frozenset({"notify_twitter", "custom_tweet"}),
)
EXAMPLE = '{"postmortem": {"body_draft": "## What happened\\n…"}}'
PUBLISH_EXAMPLE = '{"postmortem": {"notify_subscribers": true}}'


def _object(call: Call, number: int) -> Any:
    objects = call.objects

    def view(session: Session) -> dict[str, Any]:
        found = store.of(session, found_incident(session, number))
        if found is None:
            raise ApiError(
                404,
                f"Incident {number} has no postmortem yet: write one with PUT "
                f"/pages/{{page_id}}/incidents/{number}/postmortem and {EXAMPLE}.",
            )
        return objects.postmortem_object(store.record(found))

    return view


def get_postmortem(call: Call) -> Reply:
    number = incident_number(call)
    return Reply(200, call.read(_object(call, number)))


def put_postmortem(call: Call) -> Reply:
    number = incident_number(call)
    fields = DRAFT.check(unwrap(call.body(), "postmortem", example=EXAMPLE))
    if not (fields.get("body_draft") or "").strip():
        raise ApiError(422, f"postmortem[body_draft] is required, e.g. {EXAMPLE}.")

    def change(session: Session, ctx: Context) -> Result:
        found_incident(session, number, for_update=True)
        return uc.save_postmortem(session, ctx, number=number, body=fields["body_draft"])

    return Reply(200, call.write(change, _object(call, number), what="write postmortem"))


def publish_postmortem(call: Call) -> Reply:
    number = incident_number(call)
    fields = PUBLISH.check(unwrap(call.body(), "postmortem", example=PUBLISH_EXAMPLE))
    notify = fields.get("notify_subscribers") is True

    def published(session: Session) -> bool:
        found = store.of(session, found_incident(session, number))
        return found is not None and found.published_at is not None

    if not notify and call.read(published):
        # Already on the page, and nobody to tell: as on Statuspage, nothing to do.
        return Reply(200, call.read(_object(call, number)))

    def change(session: Session, ctx: Context) -> Result:
        found_incident(session, number, for_update=True)
        return uc.publish_postmortem(session, ctx, number=number, notify=notify)

    return Reply(200, call.write(change, _object(call, number), what="publish postmortem"))


def revert_postmortem(call: Call) -> Reply:
    number = incident_number(call)

    def change(session: Session, ctx: Context) -> Result:
        found_incident(session, number, for_update=True)
        return uc.revert_postmortem(session, ctx, number=number)

    return Reply(200, call.write(change, _object(call, number), what="revert postmortem"))


_PATH = "/pages/{page_id}/incidents/{incident_id}/postmortem"
ROUTES = (
    Route(
        _PATH,
        (
            Operation(
                "GET",
                get_postmortem,
                "Get Postmortem",
                "getPagesPageIdIncidentsIncidentIdPostmortem",
                200,
                "Postmortem",
            ),
            Operation(
                "PUT",
                put_postmortem,
                "Create Postmortem",
                "putPagesPageIdIncidentsIncidentIdPostmortem",
                200,
                "Postmortem",
                "PutPostmortem",
            ),
        ),
    ),
    Route(
        _PATH + "/publish",
        (
            Operation(
                "PUT",
                publish_postmortem,
                "Publish Postmortem",
                "putPagesPageIdIncidentsIncidentIdPostmortemPublish",
                200,
                "Postmortem",
                "PutPostmortemPublish",
            ),
        ),
    ),
    Route(
        _PATH + "/revert",
        (
            Operation(
                "PUT",
                revert_postmortem,
                "Revert Postmortem",
                "putPagesPageIdIncidentsIncidentIdPostmortemRevert",
                200,
                "Postmortem",
            ),
        ),
    ),
)
