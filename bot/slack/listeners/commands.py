"""The four slash commands, each acknowledged within Slack's 3 seconds whatever happens."""

from __future__ import annotations

import contextlib
from typing import Any

from slack_bolt import Ack, App, BoltContext
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot import instruments
from bot.slack import ingress
from bot.slack.ingress import TakeIn
from bot.slack.listeners import modals
from bot.slack.listeners.services import WORKING, Services, services_of, slack_text
from commands.dispatch import COMMANDS, changes, execute
from commands.result import Result


def register(app: App) -> None:
    """Listen for /incident, /maintenance, /component and /status."""
    for name in COMMANDS:
        app.command(name)(on_command)


def on_command(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    """Run the command under the deadline; ack with its reply, or "Working on it…".

    The gate's replay check for the request (if it came through the gate) is made in
    the command's own transaction, so it is remembered with what it changed.
    """
    services = services_of(context)
    take_in = ingress.claim()
    command = str(body.get("command") or "")
    text = str(body.get("text") or "")
    user = str(body.get("user_id") or "")
    response_url = str(body.get("response_url") or "") or None
    if command == "/incident" and not text.strip():
        if take_in is not None and not take_in.alone():  # no transaction of its own
            ack(response_type="ephemeral", text=ingress.ALREADY_DONE)
            return
        # The form opens from a worker; its trigger_id stays valid for 3 seconds.
        trigger_id = str(body.get("trigger_id") or "")
        ack()
        services.start(
            lambda: modals.open_declare(services, user, trigger_id, response_url),
            response_url=response_url,
        )
        return

    def late(result: Result) -> None:
        services.respond(response_url, result.reply)

    result = services.within_deadline(
        lambda: run(services, command, text, user, take_in=take_in),
        late=late,
        response_url=response_url,
    )
    if result is None:
        ack(response_type="ephemeral", text=WORKING)
    else:
        ack(response_type="ephemeral", text=slack_text(result.reply))


def run(
    services: Services, command: str, text: str, user: str, *, take_in: TakeIn | None = None
) -> Result:
    """One slash command as `user`, in their time zone, then the after-change hooks;
    `take_in` is written first in its transaction, and a repeat is not run."""
    try:
        ctx = services.context(user, change=changes(command, text))
    except Exception:
        if take_in is not None:  # remembered even so: a replay of it is "Already done"
            with contextlib.suppress(SQLAlchemyError):
                take_in.alone()
        raise

    def first(session: Session) -> Result | None:
        assert take_in is not None
        return None if take_in(session) else Result(ok=False, reply=ingress.ALREADY_DONE)

    try:
        result = execute(
            services.runtime.factory, ctx, command, text, first=first if take_in else None
        )
    except Exception:
        instruments.count_command(command, "error")
        raise
    if take_in is not None and take_in.replayed:
        return result  # not a command run: nothing to count, nothing changed
    instruments.count_command(command, "ok" if result.ok else "refused")
    services.changed(result)
    return result
