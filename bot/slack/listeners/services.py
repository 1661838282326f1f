"""What every listener gets: the runtime, the Slack gateway, and work under a deadline.

Slack wants an answer within 3 seconds whatever happens. Listeners run in the
HTTP request's thread and hand the work (Slack lookups, the database, hooks) to
a worker pool; they wait for it at most `deadline` seconds, then answer either
with the result or with "Working on it…", and the late result follows through
the `response_url`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_bolt import BoltContext

from bot.runtime import Runtime
from bot.slack.gateway import SlackError
from commands.context import Context, Editors
from commands.result import Result

log = logging.getLogger(__name__)

T = TypeVar("T")

CONTEXT_KEY = "statusbot"
DEFAULT_DEADLINE = 2.0

WORKING = "Working on it… the answer will follow here in a moment."
SORRY = (
    "Sorry, something went wrong inside statusbot and it could not finish that. "
    "Check /status or /incident list to see what was saved, then try again; "
    "the details are in statusbot's log."
)


class Gateway(Protocol):
    """The calls the listeners make to Slack (bot/slack/gateway.py's SlackGateway)."""

    def members_of(self, usergroup_id: str) -> frozenset[str]:
        """A user group's members; raises a SlackError when Slack can't be asked."""
        ...

    def user_timezone(self, user: str) -> str | None: ...

    def known_members(self, usergroup_id: str) -> frozenset[str]: ...

    def open_view(self, trigger_id: str, view: Any) -> dict[str, Any]: ...

    def update_view(
        self, view_id: str, view: Any, *, hash: str | None = None
    ) -> dict[str, Any]: ...

    def permalink(self, channel: str, ts: str) -> str | None: ...

    def respond(self, response_url: str, payload: Any) -> None: ...


@dataclass
class Services:
    """The dependencies of every listener, put in bolt's context by create_app."""

    runtime: Runtime
    gateway: Gateway
    pool: Executor
    deadline: float = DEFAULT_DEADLINE

    def context(self, user: str, *, change: bool = True) -> Context:
        """A command's context: the person's Slack time zone, and for a `change` the
        editors with their user groups looked up (a read needs no lookup)."""
        zone = self.gateway.user_timezone(user)
        tz: ZoneInfo | None = None
        if zone:
            try:
                tz = ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                log.warning("Slack gave %s the unknown time zone %r", user, zone)
        ctx = self.runtime.context(user, tz=tz)
        if change:
            return dataclasses.replace(ctx, editors=self.editors_for(user))
        # A read waits on no lookup: a user group's members are what Slack last said
        # (what a read shows editors, such as drafts, follows that).
        known = Editors(ctx.editors.ids, members_of=self.gateway.known_members)
        return dataclasses.replace(ctx, editors=known)

    def editors_for(self, user: str) -> Editors:
        """STATUSBOT_EDITORS, with the user groups that matter already looked up.

        The lookups happen here, before any transaction: asked from inside one,
        a slow Slack would hold the database for everyone.
        """
        ids = self.runtime.settings.editors
        if not ids or user in ids:
            return Editors(ids)
        groups: dict[str, frozenset[str]] = {}
        unanswered: set[str] = set()
        for gid in sorted(i for i in ids if i.startswith("S")):
            try:
                groups[gid] = self.gateway.members_of(gid)
            except SlackError as error:
                log.warning("could not ask Slack who is in %s: %s", gid, error)
                unanswered.add(gid)
                continue
            if user in groups[gid]:
                break  # one group is enough; don't wait on Slack for the others
        return Editors(
            ids,
            members_of=lambda gid: groups.get(gid, frozenset()),
            unanswered=frozenset(unanswered),
        )

    def changed(self, result: Result) -> None:
        """Let the page, the outbox worker and others know that something changed."""
        if result.changed:
            for hook in self.runtime.after_change:
                hook(result)

    def within_deadline(
        self, work: Callable[[], T], *, late: Callable[[T], None], response_url: str | None
    ) -> T | None:
        """Run `work` in the pool; its value if it ends within the deadline, else None.

        When it ends later, `late(value)` runs in the worker (an error is logged and
        the person told through `response_url`). An error within the deadline is
        raised here, for bolt's error handler.
        """
        handoff = _Handoff[T]()
        self.pool.submit(handoff.run, work, late, lambda e: self.failed_late(e, response_url))
        return handoff.wait(self.deadline)

    def start(self, work: Callable[[], None], *, response_url: str | None) -> None:
        """Run `work` in the pool without waiting; an error is logged and the person told."""

        def guarded() -> None:
            try:
                work()
            except Exception as error:  # reported to the person, like bolt's error handler
                self.failed_late(error, response_url)

        self.pool.submit(guarded)

    def failed_late(self, error: BaseException, response_url: str | None) -> None:
        """An error after the ack: log it, tell the person."""
        log.error("a Slack request failed after its ack", exc_info=error)
        self.respond(response_url, SORRY)

    def respond(self, response_url: str | None, text: str) -> None:
        """An ephemeral message to the person, through the request's response_url."""
        if not response_url:
            return
        payload = {
            "response_type": "ephemeral",
            "replace_original": False,
            "text": slack_text(text),
        }
        try:
            self.gateway.respond(response_url, payload)
        except SlackError as error:
            log.warning("could not answer through the response_url: %s", error)


class _Handoff(Generic[T]):
    """One job's outcome, taken either by the waiting listener or by the late path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._late = False
        self._value: T | None = None
        self._error: BaseException | None = None

    def run(
        self,
        work: Callable[[], T],
        late: Callable[[T], None],
        failed: Callable[[BaseException], None],
    ) -> None:
        try:
            value = work()
        except Exception as error:  # handed to the listener or to `failed`, never lost
            with self._lock:
                self._error = error
                self._done.set()
                was_late = self._late
            if was_late:
                failed(error)
            return
        with self._lock:
            self._value = value
            self._done.set()
            was_late = self._late
        if was_late:
            try:
                late(value)
            except Exception as error:  # the late reply itself failed
                failed(error)

    def wait(self, timeout: float) -> T | None:
        self._done.wait(timeout)
        with self._lock:
            if not self._done.is_set():
                self._late = True
                return None
            if self._error is not None:
                raise self._error
            return self._value


def services_of(context: BoltContext) -> Services:
    """The Services create_app put in bolt's context."""
    found = context[CONTEXT_KEY]
    assert isinstance(found, Services)
    return found


# --- Slack's text --------------------------------------------------------------------------

# A reply is Slack mrkdwn already: commands/ escape everything a person typed with
# storage/escaping.py, the one escape announcements use too. As a guard against a
# reply that forgot, only statusbot's own markup (<@U1>, <#C1>) passes as markup.
_OWN_MARKUP_OR_BRACKET = re.compile(r"<[@#][A-Z0-9]+>|[<>]")
_BRACKETS = {"<": "&lt;", ">": "&gt;"}


def guard(text: str) -> str:
    """Escape any `<` or `>` that is not part of a mention or channel link of ours."""
    return _OWN_MARKUP_OR_BRACKET.sub(lambda m: _BRACKETS.get(m.group(0), m.group(0)), text)


def slack_text(reply: str) -> str:
    """A command's reply for Slack: guarded, with its usage lines in a code block."""
    head, sep, usage = reply.partition("\n\nUsage:\n")
    text = guard(head)
    if sep:
        text += "\n\nUsage:\n```" + guard(usage) + "```"
    return text
