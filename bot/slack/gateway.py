"""The one gateway for Slack Web API calls: errors classified, lookups cached.

Every Slack call statusbot makes goes through `SlackGateway`, so rate limits,
retries and the test fake live in one place. A failed call raises one of three
errors, and the caller decides what to do:

- `RateLimited(retry_after)`: HTTP 429; Slack said when to come back.
- `Transient`: worth retrying later (5xx, a dropped connection, a timeout,
  Slack's `internal_error`, `fatal_error`, `service_unavailable`, …).
- `Permanent`: retrying can't help (`channel_not_found`, `not_in_channel`,
  `invalid_auth`, `msg_too_long`, …).

Writes (`post_message`, `update_message`, …) are tried once: the SDK's own
connection retry is off, because resending a message whose answer was lost
would post it twice; the outbox deliverer schedules its own retries. Lookups
(`members_of`, `user_timezone`) are idempotent reads that a person is waiting
for: they wait at most `LOOKUP_TIMEOUT` seconds, retry a quick failure once,
never a timeout, and are cached. `members_of` raises `LookupFailed` when Slack
could not say and no earlier answer is at hand, so that a change is refused as
"Slack couldn't be asked", not as "not an editor".
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient

log = logging.getLogger(__name__)

T = TypeVar("T")

# `ok: false` errors that mean "Slack had a problem, try again later".
TRANSIENT_ERRORS = frozenset(
    {
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "timeout",
    }
)

DEFAULT_RETRY_AFTER = 30.0  # when a 429 comes without a usable Retry-After
MAX_RETRY_AFTER = 3600.0
# The metadata event type of statusbot's posts; its payload's "key" names the
# notification (outbox entry) and the message's role in it.
POSTED_EVENT = "statusbot_notification"
# A lost thread reply is looked for among at most this many pages of 200 replies.
LOOKUP_PAGES = 5
LOOKUP_TTL = 60.0  # seconds a user group's members stay cached: a removal counts soon
LOOKUP_TIMEOUT = 1.5  # seconds a lookup waits for Slack, so a refusal still fits the ack
TIMEZONE_TTL = 3600.0  # seconds a user's time zone stays cached
LOOKUP_FAILURE_TTL = 5.0  # after a failed lookup, don't ask again for this long
LOOKUP_TRIES = 2
LOOKUP_MAX_PAUSE = 1.0  # a lookup waits at most this long between its tries


class SlackError(Exception):
    """A Slack call failed; `method` and `error` say which and why."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"{method}: {error}")
        self.method = method
        self.error = error


class RateLimited(SlackError):
    """HTTP 429: come back after `retry_after` seconds."""

    def __init__(self, method: str, error: str, retry_after: float) -> None:
        super().__init__(method, f"{error} (retry after {retry_after:g}s)")
        self.retry_after = retry_after


class Transient(SlackError):
    """A failure that may go away: try again later."""


class Permanent(SlackError):
    """A failure that retrying can't fix."""


class TimedOut(Transient):
    """Slack did not answer in time; not retried inside a lookup, someone is waiting."""


class LookupFailed(SlackError):
    """Slack could not be asked (and there is no earlier answer to fall back on)."""


@dataclass
class _Cached:
    value: Any
    expires: float  # monotonic time after which it is refreshed
    retry_at: float = 0.0  # after a failure: don't ask Slack again before this


class SlackGateway:
    """Slack's Web API, as statusbot uses it."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        timeout: int = 15,
        lookup_timeout: float = LOOKUP_TIMEOUT,
    ) -> None:
        kwargs: dict[str, Any] = {"token": token, "timeout": timeout, "retry_handlers": []}
        if base_url:
            kwargs["base_url"] = base_url if base_url.endswith("/") else base_url + "/"
        self.client = WebClient(**kwargs)
        # Lookups get their own client: the SDK's timeout is per client, not per call.
        self.lookups = WebClient(**{**kwargs, "timeout": lookup_timeout})
        self.timeout = timeout
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._groups: dict[str, _Cached] = {}
        self._zones: dict[str, _Cached] = {}

    # -- messages ---------------------------------------------------------------------
    def post_message(
        self,
        channel: str,
        *,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        key: str | None = None,
    ) -> str:
        """Post a message (a thread reply when `thread_ts` is given); its ts.

        `key` travels with the message as its metadata, so that `find_posted` can
        tell later whether Slack already has it.
        """
        kwargs: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if blocks is not None:
            kwargs["blocks"] = blocks
        if key is not None:
            kwargs["metadata"] = {"event_type": POSTED_EVENT, "event_payload": {"key": key}}
        if thread_ts is not None:
            kwargs["thread_ts"] = thread_ts
            kwargs["reply_broadcast"] = reply_broadcast
        response = self._call("chat.postMessage", lambda: self.client.chat_postMessage(**kwargs))
        return str(response["ts"])

    def find_posted(
        self,
        channel: str,
        key: str,
        *,
        thread_ts: str | None = None,
        after: str | None = None,
        pace: Callable[[], object] = lambda: None,
    ) -> str | None:
        """The ts of a message posted with `key`, or None if Slack has none, or can't say.

        In the thread of `thread_ts`: its replies since `after` (the thread's latest
        reply we know of), which Slack lists oldest first, read page by page up to
        LOOKUP_PAGES pages, so that a long thread's newest replies are seen too.
        Otherwise among the channel's latest 200 messages (Slack lists those newest
        first). `pace` is called before each request (the caller's rate limit).

        Reading a channel needs the channels:history (groups:history for a private
        channel) scope and the bot in the channel; without them this answers None
        and the caller posts, as it would have anyway.
        """
        cursor: str | None = None
        for _ in range(LOOKUP_PAGES if thread_ts else 1):
            pace()
            try:
                response = self._history_page(channel, thread_ts, after, cursor)
            except Permanent as exc:
                log.warning("Could not check %s for a message already posted: %s", channel, exc)
                return None
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == POSTED_EVENT and payload.get("key") == key:
                    return str(message["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not response.get("has_more") or not cursor:
                break
        return None

    def _history_page(
        self, channel: str, thread_ts: str | None, after: str | None, cursor: str | None
    ) -> SlackResponse:
        """One page of a thread's replies (since `after`) or of a channel's latest messages."""
        page: dict[str, Any] = {"include_all_metadata": True, "limit": 200}
        if cursor:
            page["cursor"] = cursor
        if thread_ts is None:
            return self._call(
                "conversations.history",
                lambda: self.client.conversations_history(channel=channel, **page),
            )
        if after:
            page["oldest"] = after
        return self._call(
            "conversations.replies",
            lambda: self.client.conversations_replies(channel=channel, ts=thread_ts, **page),
        )

    def update_message(
        self, channel: str, ts: str, *, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        """Edit a message the bot posted, in place."""
        kwargs: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        if blocks is not None:
            kwargs["blocks"] = blocks
        self._call("chat.update", lambda: self.client.chat_update(**kwargs))

    def post_ephemeral(
        self, channel: str, user: str, *, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        """Show a message to one person in a channel."""
        kwargs: dict[str, Any] = {"channel": channel, "user": user, "text": text}
        if blocks is not None:
            kwargs["blocks"] = blocks
        self._call("chat.postEphemeral", lambda: self.client.chat_postEphemeral(**kwargs))

    # -- modals and interactivity -----------------------------------------------------
    def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> dict[str, Any]:
        """Open a modal; the view as Slack stored it."""
        response = self._call(
            "views.open", lambda: self.client.views_open(trigger_id=trigger_id, view=dict(view))
        )
        return dict(response.get("view") or {})

    def update_view(
        self, view_id: str, view: Mapping[str, Any], *, hash: str | None = None
    ) -> dict[str, Any]:
        """Replace an open modal's content."""
        response = self._call(
            "views.update",
            lambda: self.client.views_update(view_id=view_id, view=dict(view), hash=hash),
        )
        return dict(response.get("view") or {})

    def permalink(self, channel: str, ts: str) -> str | None:
        """A link to a message (chat.getPermalink), or None when Slack won't say."""
        try:
            response = self._call(
                "chat.getPermalink",
                lambda: self.client.chat_getPermalink(channel=channel, message_ts=ts),
            )
        except SlackError as exc:
            log.warning("chat.getPermalink for %s %s failed: %s", channel, ts, exc)
            return None
        link = response.get("permalink")
        return str(link) if isinstance(link, str) and link else None

    def respond(self, response_url: str, payload: Mapping[str, Any]) -> None:
        """Answer a slash command or an action through its `response_url`."""
        method = "response_url"
        hook = WebhookClient(response_url, timeout=self.timeout, retry_handlers=[])
        try:
            response = hook.send_dict(dict(payload))
        except (OSError, http.client.HTTPException) as exc:
            raise Transient(method, _describe(exc)) from exc
        status = response.status_code
        if status == 200:
            return
        error = (response.body or f"HTTP {status}").strip()[:200]
        if status == 429:
            raise RateLimited(method, error, _retry_after(response.headers))
        if status >= 500:
            raise Transient(method, error)
        raise Permanent(method, error)

    # -- lookups ----------------------------------------------------------------------
    def members_of(self, usergroup_id: str) -> frozenset[str]:
        """The user ids in a user group (`S…`), cached; LookupFailed when Slack can't say."""
        method = "usergroups.users.list"

        def fetch() -> frozenset[str]:
            try:
                response = self._call(
                    method, lambda: self.lookups.usergroups_users_list(usergroup=usergroup_id)
                )
            except Permanent as exc:
                if exc.error != "no_such_subteam":
                    raise
                log.warning(
                    "STATUSBOT_EDITORS names %s, a user group Slack does not know", usergroup_id
                )
                return frozenset()  # an answer: nobody is in it
            return frozenset(str(u) for u in response.get("users") or ())

        found = self._lookup(self._groups, usergroup_id, fetch, ttl=LOOKUP_TTL)
        if not isinstance(found, frozenset):
            raise LookupFailed(method, f"no answer about {usergroup_id}")
        return found

    def known_members(self, usergroup_id: str) -> frozenset[str]:
        """A user group's members as Slack last said (any age), asking Slack nothing:
        for reads, which never wait on a lookup. Empty when never asked."""
        with self._lock:
            cached = self._groups.get(usergroup_id)
        value = cached.value if cached is not None else None
        return value if isinstance(value, frozenset) else frozenset()

    def user_timezone(self, user: str) -> str | None:
        """A user's IANA time zone from their Slack profile, cached; None when unknown."""

        def fetch() -> str | None:
            response = self._call("users.info", lambda: self.lookups.users_info(user=user))
            profile = response.get("user") or {}
            zone = profile.get("tz") if isinstance(profile, dict) else None
            return str(zone) if zone else None

        found = self._lookup(self._zones, user, fetch, ttl=TIMEZONE_TTL)
        return found if isinstance(found, str) else None

    def forget(self) -> None:
        """Drop every cached lookup."""
        with self._lock:
            self._groups.clear()
            self._zones.clear()

    def _lookup(
        self, cache: dict[str, _Cached], key: str, fetch: Callable[[], T], *, ttl: float
    ) -> T | None:
        """A cached read: fresh value, else a brief retry, else the last good value."""
        now = self._clock()
        with self._lock:
            cached = cache.get(key)
        if cached is not None and (now < cached.expires or now < cached.retry_at):
            return cached.value  # type: ignore[no-any-return]
        last_error: SlackError | None = None
        for attempt in range(LOOKUP_TRIES):
            try:
                value = fetch()
            except (Permanent, TimedOut) as exc:
                last_error = exc
                break
            except (RateLimited, Transient) as exc:
                last_error = exc
                pause = exc.retry_after if isinstance(exc, RateLimited) else 0.25 * (attempt + 1)
                if attempt + 1 < LOOKUP_TRIES and pause <= LOOKUP_MAX_PAUSE:
                    self._sleep(pause)
                    continue
                break
            with self._lock:
                cache[key] = _Cached(value, expires=self._clock() + ttl)
            return value
        assert last_error is not None
        backoff = LOOKUP_FAILURE_TTL
        if isinstance(last_error, RateLimited):
            backoff = max(backoff, last_error.retry_after)
        stale = cached.value if cached is not None else None
        log.warning(
            "Slack lookup %s failed (%s); using %s",
            key,
            last_error,
            "the last known value" if cached is not None else "nothing",
        )
        with self._lock:
            cache[key] = _Cached(
                stale,
                expires=cached.expires if cached is not None else 0.0,
                retry_at=self._clock() + backoff,
            )
        return stale

    # -- errors -----------------------------------------------------------------------
    def _call(self, method: str, call: Callable[[], SlackResponse]) -> SlackResponse:
        try:
            return call()
        except SlackApiError as exc:
            _raise_classified(method, exc.response)
        except SlackClientError as exc:  # a request the SDK refused to build or send
            raise Permanent(method, _describe(exc)) from exc
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # URLError, ConnectionError and socket timeouts are OSErrors; a
            # truncated or garbled answer surfaces as HTTPException or ValueError.
            if isinstance(exc, TimeoutError) or isinstance(
                getattr(exc, "reason", None), TimeoutError
            ):
                raise TimedOut(method, _describe(exc)) from exc
            raise Transient(method, _describe(exc)) from exc


def _raise_classified(method: str, response: SlackResponse) -> NoReturn:
    status = response.status_code
    data = response.data if isinstance(response.data, dict) else {}
    error = str(data.get("error") or f"HTTP {status}")
    if status == 429 or error in ("ratelimited", "rate_limited"):
        raise RateLimited(method, error, _retry_after(response.headers))
    if status >= 500 or status == 408 or error in TRANSIENT_ERRORS:
        raise Transient(method, error)
    if error.startswith("Received a response in a non-JSON format"):
        raise Transient(method, error)  # a proxy's error page, not Slack's answer
    raise Permanent(method, error)


def _retry_after(headers: Mapping[str, Any] | None) -> float:
    value: Any = None
    for name, header in (headers or {}).items():
        if name.lower() == "retry-after":
            value = header[0] if isinstance(header, list) and header else header
            break
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    return min(max(seconds, 1.0), MAX_RETRY_AFTER)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
