"""Buttons on an announcement: "Post update", "Resolve" and "Add note" open their modals."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.slack.listeners import modals
from bot.slack.listeners.services import services_of
from renderers import slack_modals as ui

UPDATE = "incident_update"
RESOLVE = "incident_resolve"
NOTE = "incident_note"

NO_NUMBER = "That button does not name an incident; use /incident list to find it."


def register(app: App) -> None:
    """Listen for the announcement's buttons; ack every other action (links) too."""
    app.action(UPDATE)(on_update)
    app.action(RESOLVE)(on_resolve)
    app.action(NOTE)(on_note)
    app.action(ui.TEMPLATE_ACTION)(on_template)
    # A link button still sends an action; acking it keeps Slack from showing an error.
    app.action(re.compile(".*"))(on_other)


def on_update(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    """The "Post update" button: ack, then open the prefilled modal."""
    ack()
    _open(body, context, form="update")


def on_resolve(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    """The "Resolve" button: ack, then open its modal."""
    ack()
    _open(body, context, form="resolve")


def on_note(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    """The "Add note" button: ack, then open the internal note's modal."""
    ack()
    _open(body, context, form="note")


def on_template(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    """A template picked in the declare form: ack, then fill the form from it."""
    ack()
    services = services_of(context)
    services.start(lambda: modals.fill_from_template(services, body), response_url=None)


def on_other(ack: Ack) -> None:
    """Any other action: nothing to do but ack."""
    ack()


def _open(body: dict[str, Any], context: BoltContext, *, form: modals.IncidentForm) -> None:
    services = services_of(context)
    user = str((body.get("user") or {}).get("id") or "")
    trigger_id = str(body.get("trigger_id") or "")
    response_url = str(body.get("response_url") or "") or None
    actions = body.get("actions") or [{}]
    number = _number(str(actions[0].get("value") or ""))
    if number is None:
        services.start(lambda: services.respond(response_url, NO_NUMBER), response_url=None)
        return
    services.start(
        lambda: modals.open_incident_modal(
            services, user, trigger_id, number, response_url, form=form
        ),
        response_url=response_url,
    )


def _number(value: str) -> int | None:
    digits = value.strip().removeprefix("#")
    return int(digits) if digits.isdigit() and len(digits) < 10 else None
