"""The gate in front of bolt: only signed, well-formed, first-time Slack requests reach it.

In order, and before anything parses the body:

1. the timestamp and signature headers are there, the timestamp is an integer
   within Slack's 5 minutes of now, the signature has Slack's shape (401);
2. the body is UTF-8 (400) and the signature is right for it (slack_sdk's
   SignatureVerifier, 401);
3. the body parses for its content type: a form with a slash command or a
   `payload=` JSON object, or a JSON object, with the parts bolt relies on (400);
4. it was not taken in before: one INSERT into the seen-request window, which
   every process shares (storage/seen_requests.py). A repeat, whether replayed
   or retried by Slack (`X-Slack-Retry-Num`), gets the ack Slack expects (200)
   and is not applied again. A slash command is taken in by its command's own
   transaction (`TakeIn`, claimed by bot/slack/listeners/commands.py): one
   transaction instead of two on the ack's path, and the request is remembered
   exactly when what it changed is written. Everything else is taken in here.

A refusal is logged as one line with every untrusted part escaped, so a body
can never forge a log line. Socket Mode does not come through here: its
websocket is authenticated and its envelopes carry no signature.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from slack_sdk.signature import Clock, SignatureVerifier
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.runtime import Runtime
from storage import seen_requests
from storage.db import transaction

log = logging.getLogger(__name__)

# The reply to a signed slash command that came before (replayed, or retried by Slack).
ALREADY_DONE = "Already done: this request was received before, and is not applied twice."

# Slack's own limit: a request whose timestamp is further from now is refused.
WINDOW = 5 * 60
# Seen requests are kept this much longer, for clocks that differ between hosts.
CLOCK_MARGIN = 60
# Each process clears the expired ones at most this often, in the same transaction
# as a request's own INSERT: no job to schedule, and the table stays small.
PURGE_EVERY = 5 * 60
# How much of an untrusted body a log line shows.
LOGGED_BODY = 200

# ASCII digits only: int() would also take " 12", "1_000" and other scripts' digits.
_TIMESTAMP = re.compile(r"[0-9]{1,12}\Z")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}\Z")
_FORM_TYPE = "application/x-www-form-urlencoded"
_JSON_TYPE = "application/json"
# Parts of an interactive payload bolt reads as objects without looking first.
_OBJECTS = ("user", "team", "channel", "view", "container", "message", "enterprise", "event")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's answer when it answers itself: a status and a JSON body (None: empty)."""

    status: int
    payload: dict[str, Any] | None = None


class TakeIn:
    """One signed request's entry in the seen-request window, to write in a transaction."""

    def __init__(self, ingress: SlackIngress, headers: _Headers, timestamp: int) -> None:
        # The signature covers the timestamp and the body: it names this request exactly.
        self.key = hashlib.sha256(str(headers.signature).encode()).hexdigest()
        self.expires_at = datetime.fromtimestamp(timestamp + WINDOW + CLOCK_MARGIN, UTC)
        self.now = ingress.clock()
        self.retry = headers.retry
        self.ingress = ingress
        self.claimed = False  # a listener writes it with its command
        self.replayed = False  # it was found taken in already

    def __call__(self, session: Session, *, alone: bool = False) -> bool:
        """Take the request in within `session`'s transaction; False if it was before
        (logged). `alone`: the transaction holds nothing else."""
        first = seen_requests.first_time(
            session, key=self.key, expires_at=self.expires_at, alone=alone
        )
        if alone:  # not in a command's transaction: its locks would last the command
            self.ingress.purge_if_due(session, self.now)
        if not first:
            self.replayed = True
            log.info(
                "a Slack request seen before was answered without applying it again (retry %r)",
                self.retry,
            )
        return first

    def alone(self) -> bool:
        """Take the request in with a transaction of its own; False if it was before."""
        with transaction(self.ingress.runtime.factory) as session:
            return self(session, alone=True)


# The slash command bolt is handling in this thread, for its listener to claim.
_PENDING: ContextVar[TakeIn | None] = ContextVar("statusbot_take_in", default=None)


@contextmanager
def handing_over(take_in: TakeIn | None) -> Iterator[None]:
    """While bolt handles a request: the slash command's TakeIn, for `claim`."""
    token = _PENDING.set(take_in)
    try:
        yield
    finally:
        _PENDING.reset(token)


def claim() -> TakeIn | None:
    """The slash command being handled, for its listener to take in with its own
    transaction (bolt runs listeners in the request's thread); None where the gate was
    not passed (Socket Mode, or bolt called directly)."""
    take_in = _PENDING.get()
    if take_in is not None:
        take_in.claimed = True
    return take_in


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.verdict = Verdict(status, {"ok": False, "error": code, "message": message})


class SlackIngress:
    """Checks each request to /slack/events; `admit` says whether bolt may have it."""

    def __init__(self, runtime: Runtime, *, clock: Callable[[], float] = time.time) -> None:
        self.runtime = runtime
        self.clock = clock
        self._next_purge = 0.0

    def admit(self, environ: dict[str, Any], raw: bytes) -> Verdict | None:
        """None when bolt may handle the request (`environ` then reads as it should
        for bolt); else the answer to send instead."""
        headers = _Headers(environ)
        try:
            timestamp = self._verify(headers, raw)
            kind = _parse(headers.content_type, raw)
        except _Refused as refusal:
            _log_refusal(refusal, headers, raw)
            return refusal.verdict
        form = kind is not _PAYLOAD
        take_in = TakeIn(self, headers, timestamp)
        if kind is _COMMAND:
            # Taken in by the command's transaction: the listener claims it (`claim`).
            environ[TAKE_IN] = take_in
            verdict = None
        else:
            verdict = self._first_time(take_in, form=form)
        if verdict is None:
            self._hand_over(environ, raw, str(headers.timestamp), form=form)
        return verdict

    def after_bolt(self, take_in: TakeIn) -> None:
        """After bolt answered a slash command: taken in now if no listener claimed it,
        and the expired requests forgotten when that is due (in a transaction of their
        own, never a command's)."""
        try:
            if not take_in.claimed:
                take_in.alone()
            elif self.clock() >= self._next_purge:
                with transaction(self.runtime.factory) as session:
                    self.purge_if_due(session, self.clock())
        except SQLAlchemyError as error:
            log.error("could not remember a Slack request as seen: %s", error)

    def purge_if_due(self, session: Session, now: float) -> None:
        """Forget the expired requests, at most once every PURGE_EVERY in this process."""
        if now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY
            seen_requests.forget_expired(session, now=datetime.fromtimestamp(now, UTC))

    def _hand_over(
        self, environ: dict[str, Any], raw: bytes, timestamp: str, *, form: bool
    ) -> None:
        """Give bolt the body the gate read, in a form bolt reads as Slack meant it.

        bolt takes any form body containing the letters "payload" for an interactive
        one, so `/incident open Bad payload` would reach it as nothing at all. Written
        as "%70ayload" it means the same; the gate has checked the original's
        signature, and signs the rewritten body for bolt's own check.
        """
        if form and b"payload" in raw:
            raw = raw.replace(b"payload", b"%70ayload")
            secret = str(self.runtime.settings.slack_signing_secret)
            signature = SignatureVerifier(secret).generate_signature(
                timestamp=timestamp, body=raw.decode("utf-8")
            )
            environ["HTTP_X_SLACK_SIGNATURE"] = signature
        environ["wsgi.input"] = io.BytesIO(raw)
        environ["CONTENT_LENGTH"] = str(len(raw))

    def _verify(self, headers: _Headers, raw: bytes) -> int:
        secret = self.runtime.settings.slack_signing_secret
        ts_text, signature = headers.timestamp, headers.signature
        if not secret:
            raise _Refused(401, "not_signed", "No signing secret is set to check requests with.")
        if ts_text is None or signature is None:
            raise _Refused(
                401,
                "not_signed",
                "Missing X-Slack-Request-Timestamp or X-Slack-Signature: "
                "only Slack's signed requests are taken.",
            )
        if not _TIMESTAMP.match(ts_text):
            raise _Refused(401, "bad_timestamp", "X-Slack-Request-Timestamp must be Unix seconds.")
        timestamp = int(ts_text)
        now = self.clock()
        if abs(now - timestamp) > WINDOW:
            raise _Refused(401, "stale", "The request's timestamp is more than 5 minutes from now.")
        if not _SIGNATURE.match(signature):
            raise _Refused(401, "bad_signature", "The signature does not match the request.")
        try:
            text = raw.decode("utf-8")  # Slack's bodies are; the verifier can't take others
        except UnicodeDecodeError as error:
            raise _Refused(400, "bad_request", "The body is not UTF-8 text.") from error
        verifier = SignatureVerifier(secret, clock=_At(now))
        if not verifier.is_valid(text, ts_text, signature):
            raise _Refused(401, "bad_signature", "The signature does not match the request.")
        return timestamp

    def _first_time(self, take_in: TakeIn, *, form: bool) -> Verdict | None:
        try:
            first = take_in.alone()
        except SQLAlchemyError as error:
            log.error("could not check a Slack request against the seen ones: %s", error)
            return Verdict(
                503, {"ok": False, "error": "unavailable", "message": "Try again in a moment."}
            )
        if first:
            return None
        if form:  # a slash command
            return Verdict(200, {"response_type": "ephemeral", "text": ALREADY_DONE})
        return Verdict(200)  # the ack Slack waits for; a modal simply closes


class _At(Clock):
    """The verifier's clock, read once so the window check and ours agree."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


class _Headers:
    """The headers the gate reads, as sent (untrusted)."""

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self.timestamp: str | None = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
        self.signature: str | None = environ.get("HTTP_X_SLACK_SIGNATURE")
        self.retry: str | None = environ.get("HTTP_X_SLACK_RETRY_NUM")
        self.content_type = str(environ.get("CONTENT_TYPE") or "")


# What a signed body is, by _parse.
_COMMAND = "command"  # a slash command's form
_FORM = "form"  # another plain form (Slack's ssl_check)
_PAYLOAD = "payload"  # an interactive or event payload
# Where the gate leaves a slash command's TakeIn in the WSGI environ.
TAKE_IN = "statusbot.take_in"


def _parse(content_type: str, raw: bytes) -> str:
    """_COMMAND, _FORM or _PAYLOAD; _Refused (400) if the signed body is malformed."""
    kind = content_type.split(";", 1)[0].strip().lower()
    try:
        text = raw.decode("utf-8")  # checked before the signature was
        if kind == _JSON_TYPE:
            _payload(json.loads(text))
            return _PAYLOAD
        if kind != _FORM_TYPE:
            raise _Refused(
                400,
                "bad_request",
                f"Send {_FORM_TYPE} or {_JSON_TYPE}, as Slack does; not {kind!r}.",
            )
        fields = dict(parse_qsl(text, keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise _Refused(400, "bad_request", f"The body does not parse: {error}.") from error
    if "payload" in fields:
        try:
            _payload(json.loads(fields["payload"]))
            return _PAYLOAD
        except ValueError as error:
            raise _Refused(400, "bad_request", f"The payload is not JSON: {error}.") from error
    if fields.get("command", "").startswith("/"):
        return _COMMAND
    if "ssl_check" not in fields:
        raise _Refused(400, "bad_request", "The form has neither a slash command nor a payload.")
    return _FORM


def _payload(data: object) -> None:
    """Check an interactive or event payload: the parts bolt indexes are of their kind."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise _Refused(400, "bad_request", "The payload must be a JSON object with a type.")
    for key in _OBJECTS:
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise _Refused(400, "bad_request", f"The payload's {key!r} must be an object.")
    if data["type"] in ("block_actions", "interactive_message"):
        actions = data.get("actions")
        if not isinstance(actions, list) or not actions:
            raise _Refused(400, "bad_request", "A block_actions payload needs its actions.")
        if not all(isinstance(action, dict) for action in actions):
            raise _Refused(400, "bad_request", "Each action must be an object.")
    if data["type"] in ("view_submission", "view_closed") and not isinstance(
        data.get("view"), dict
    ):
        raise _Refused(400, "bad_request", f"A {data['type']} payload needs its view.")


def _log_refusal(refusal: _Refused, headers: _Headers, raw: bytes) -> None:
    # %r escapes every untrusted part: a CR or LF in them can't start a line of its own.
    body = raw[:LOGGED_BODY] + (b"..." if len(raw) > LOGGED_BODY else b"")
    log.warning(
        "refused a Slack request (%d): %s; timestamp=%r signature=%r content_type=%r body=%r",
        refusal.verdict.status,
        refusal,
        headers.timestamp,
        headers.signature,
        headers.content_type,
        body,
    )


# --- logs ----------------------------------------------------------------------------------

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """`text` with every control character (CR, LF, …) written as its escape."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class OneLine(logging.Filter):
    """Each record as one line: bolt puts request bodies in its messages as they came."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format: leave it to the handler to report
            return True
        if _CONTROL.search(message):
            record.msg, record.args = one_line(message), None
        return True
