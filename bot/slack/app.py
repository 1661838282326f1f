"""The bolt App: slash commands, buttons and modals, built by `create_app` (no module-level App).

Listeners run in the request's thread (`process_before_response`), so the ack
is the HTTP response and nothing is left running that Slack is not told about;
the work itself runs in a worker pool under a deadline (listeners/services.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

from bot.runtime import Runtime
from bot.slack.gateway import SlackGateway
from bot.slack.ingress import OneLine
from bot.slack.listeners import actions, commands, modals, shortcuts
from bot.slack.listeners.services import (
    CONTEXT_KEY,
    DEFAULT_DEADLINE,
    SORRY,
    Gateway,
    Services,
)
from renderers import slack_modals as ui

log = logging.getLogger(__name__)

# Enough for a burst of slow commands; SQLite serialises writers anyway.
WORKERS = 16


def create_app(
    runtime: Runtime,
    *,
    gateway: Gateway | None = None,
    pool: Executor | None = None,
    deadline: float = DEFAULT_DEADLINE,
    socket_mode: bool = False,
) -> App:
    """A bolt App for statusbot's commands, buttons and modals.

    Every Web API call goes through `gateway` (a SlackGateway at SLACK_API_URL by
    default). Requests are signature-checked unless `socket_mode` (where Slack's
    websocket authenticates them). The bot token is never verified over the
    network: bolt's authorize step answers from the settings.
    """
    settings = runtime.settings
    token = settings.slack_bot_token
    if not token:
        raise ValueError("SLACK_BOT_TOKEN is not set: Slack is off.")
    if not socket_mode and not settings.slack_signing_secret:
        raise ValueError("SLACK_SIGNING_SECRET is not set: Slack requests can't be checked.")
    if gateway is None:
        gateway = SlackGateway(token, base_url=settings.slack_api_url)
    services = Services(
        runtime=runtime,
        gateway=gateway,
        pool=pool or ThreadPoolExecutor(WORKERS, thread_name_prefix="statusbot-slack"),
        deadline=deadline,
    )
    client_options: dict[str, Any] = {}
    if settings.slack_api_url:
        url = settings.slack_api_url
        client_options["base_url"] = url if url.endswith("/") else url + "/"
    bolt_log = logging.getLogger("statusbot.slack")
    bolt_log.addFilter(_NOT_ABOUT_THE_TOKEN)
    # Before the App: bolt's own loggers copy these filters when they are made.
    bolt_log.addFilter(_ONE_LINE)
    app = App(
        name="statusbot",
        client=WebClient(**client_options),
        authorize=_authorize(token),
        signing_secret=settings.slack_signing_secret,
        request_verification_enabled=not socket_mode,
        token_verification_enabled=False,
        process_before_response=True,
        logger=bolt_log,
    )

    @app.use
    def provide_services(context: BoltContext, next: Callable[[], None]) -> None:
        context[CONTEXT_KEY] = services
        next()

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        log.error("a Slack request failed", exc_info=error)
        if body.get("type") == "view_submission":
            return BoltResponse(
                status=200, body={"response_action": "errors", "errors": {ui.MESSAGE: SORRY}}
            )
        if body.get("command"):
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": SORRY})
        return BoltResponse(status=200, body="")

    commands.register(app)
    modals.register(app)
    actions.register(app)
    shortcuts.register(app)
    return app


class _NotAboutTheToken(logging.Filter):
    """Drop bolt's startup warning that SLACK_BOT_TOKEN goes unused: `authorize` uses it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


_NOT_ABOUT_THE_TOKEN = _NotAboutTheToken()
_ONE_LINE = OneLine()


def _authorize(token: str) -> Callable[..., AuthorizeResult]:
    def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=token)

    return authorize
