"""The "Declare incident" message shortcut: the declare form, prefilled from a message.

The form opens with the message's first line as the title and its text as the
message, and carries a link back to the message (chat.getPermalink, or one built
from the team, channel and ts when Slack won't say). The link is kept with the
incident and shown in Slack only, never on the status page.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.slack.listeners import modals
from bot.slack.listeners.services import Services, services_of
from commands import textrules
from commands.tokens import unslack
from renderers import slack_modals as ui

DECLARE_FROM_MESSAGE = "declare_from_message"  # manifest.yml's callback_id


def register(app: App) -> None:
    """Listen for the message shortcut."""
    app.shortcut(DECLARE_FROM_MESSAGE)(on_declare_from_message)


def on_declare_from_message(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    """Ack, then open the declare form prefilled from the message (its trigger lasts 3 s)."""
    ack()
    services = services_of(context)
    user = str((body.get("user") or {}).get("id") or "")
    trigger_id = str(body.get("trigger_id") or "")
    response_url = str(body.get("response_url") or "") or None
    services.start(
        lambda: modals.open_declare(
            services, user, trigger_id, response_url, prefill=prefill(services, body)
        ),
        response_url=response_url,
    )


def prefill(services: Services, body: dict[str, Any]) -> ui.Prefill:
    """The form's title, message and link back, from a message_action payload."""
    given = body.get("message")
    message: dict[str, Any] = given if isinstance(given, dict) else {}
    channel = str((body.get("channel") or {}).get("id") or "")
    ts = str(message.get("ts") or "")
    text = unslack(str(message.get("text") or ""))
    first = next((line for line in text.splitlines() if line.strip()), "")
    title = textrules.tidy(first, textrules.TITLE)
    if len(title) > ui.MAX_TITLE:
        title = title[: ui.MAX_TITLE - 1] + "…"
    return ui.Prefill(
        title=title,
        message=textrules.tidy(text, textrules.MESSAGE)[: ui.MAX_MESSAGE],
        source_link=link(services, body, channel, ts),
        version="m",
    )


def link(services: Services, body: dict[str, Any], channel: str, ts: str) -> str | None:
    """The message's permalink: Slack's, or built like Slack builds them."""
    if not channel or not ts:
        return None
    found = services.gateway.permalink(channel, ts)
    if found:
        return found
    domain = str((body.get("team") or {}).get("domain") or "")
    if not domain or not ts.replace(".", "").isdigit():
        return None
    return f"https://{domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
