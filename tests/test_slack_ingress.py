"""The gate in front of bolt (bot/slack/ingress.py), through the real HTTP server.

Unsigned or garbled requests are refused (401) before anything parses them,
signed but malformed bodies get a 400, signed values the forms never send get
an error in the modal, each refusal is logged as one escaped line, and a
request seen before (replayed, or retried by Slack) is answered with the ack
Slack expects and is not applied again, whichever process it reaches.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_bolt.request import BoltRequest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bot.runtime import Runtime
from bot.settings import Settings
from bot.slack.app import create_app
from bot.slack.gateway import SlackGateway
from bot.slack.ingress import ALREADY_DONE, CLOCK_MARGIN, PURGE_EVERY, WINDOW, SlackIngress
from bot.slack.listeners.services import SORRY, Services
from renderers import slack_modals as ui
from storage import seen_requests
from storage.db import transaction
from storage.models import AuditEvent, Incident, SeenRequest
from tests.conftest import FakeClock
from tests.fake_slack import FakeSlack
from tests.helpers import slash_command
from tests.test_slack_http import SECRET, Slack, code_of, slack_settings, start
from tests.test_web import Answer, call

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def slack(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeSlack, tmp_path: Path
) -> Iterator[Slack]:
    yield from start(slack_settings(settings, fake, tmp_path), engine, clock, fake)


def send(
    slack: Slack,
    body: bytes | str,
    *,
    content_type: str = FORM,
    timestamp: str | None = None,
    signature: str | None = None,
    sign: bool = True,
    extra: dict[str, str] | None = None,
) -> Answer:
    """POST to /slack/events with exactly these headers; signed properly unless told."""
    ts = str(int(time.time())) if timestamp is None else timestamp
    headers = {"Content-Type": content_type, **(extra or {})}
    if sign:
        headers["X-Slack-Request-Timestamp"] = ts
        headers["X-Slack-Signature"] = signature or sign_bytes(ts, body)
    return call(slack.base, "POST", "/slack/events", body, headers)


def sign_bytes(ts: str, body: bytes | str) -> str:
    """Slack's v0 signature, over any bytes (the SDK's signer takes UTF-8 text only)."""
    data = body.encode() if isinstance(body, str) else body
    base = b"v0:" + ts.encode() + b":" + data
    return "v0=" + hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()


def incidents(slack: Slack) -> int:
    with slack.runtime.factory() as session:
        return int(session.scalar(select(func.count()).select_from(Incident)) or 0)


def open_command(text: str = "open Replayed -- once") -> str:
    return urlencode(
        slash_command("/incident", text, user="U1", response_url="https://hooks.invalid/r1")
    )


def no_line_starts_with_fake(caplog: pytest.LogCaptureFixture) -> bool:
    return not any(line.lstrip().startswith("FAKE") for line in caplog.text.splitlines())


# --- unauthenticated garbage: 401 before any parsing ------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"timestamp": "soon"},
        {"timestamp": ""},
        {"timestamp": "+" + str(int(time.time()))},  # int() would take it
        {"timestamp": "1_700_000_000"},
        {"timestamp": "1e9"},
        {"timestamp": "9" * 40},
        {"sign": False},
        {"signature": "v1=" + "0" * 64},
        {"signature": "v0=" + "g" * 64},
    ],
    ids=lambda h: repr(h),
)
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (FORM, open_command()),
        ("application/json", "{"),
        (FORM, "payload=notjson"),
        (FORM, "\xff\xfe"),
    ],
    ids=["command", "broken-json", "payload-notjson", "not-utf8"],
)
def test_unsigned_or_garbled_headers_get_401_with_no_traceback(
    slack: Slack,
    caplog: pytest.LogCaptureFixture,
    headers: dict[str, Any],
    content_type: str,
    body: str,
) -> None:
    before = slack.rows()
    with caplog.at_level(logging.INFO):
        answer = send(slack, body.encode("latin-1"), content_type=content_type, **headers)
    assert answer.status == 401, answer.body
    assert answer.json()["ok"] is False
    assert slack.rows() == before
    assert "Traceback" not in caplog.text
    assert [r.levelname for r in caplog.records if r.name == "bot.slack.ingress"] == ["WARNING"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_stale_signed_request_is_401(slack: Slack) -> None:
    stale = str(int(time.time()) - WINDOW - 5)
    answer = send(slack, open_command(), timestamp=stale)
    assert answer.status == 401
    assert answer.json()["error"] == "stale"
    assert incidents(slack) == 0


# --- signed but malformed: 400 -------------------------------------------------------------


def payload(data: object) -> str:
    return urlencode({"payload": json.dumps(data)})


def button(**changes: Any) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": "U1"},
        "team": {"id": "T0TEAM"},
        "trigger_id": "1.2.3",
        "response_url": "https://hooks.invalid/b1",
        "actions": [{"action_id": "incident_update", "value": "1", "type": "button"}],
        **changes,
    }


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", "{"),
        ("application/json", "[1, 2]"),
        ("application/json", '{"no": "type"}'),
        (FORM, "payload=notjson"),
        (FORM, "payload=%5B%5D"),  # a list
        (FORM, payload({"type": 7})),
        (FORM, payload(button(actions=[]))),
        (FORM, payload(button(actions=["incident_update"]))),
        (FORM, payload(button(actions={"action_id": "incident_update"}))),
        (FORM, payload(button(user="U1"))),
        (FORM, payload({"type": "view_submission", "user": {"id": "U1"}})),
        (FORM, "user_id=U1&text=hello"),  # neither a command nor a payload
        (FORM, "command=%2Fstatus&bad%ZZ"),
        ("text/plain", "command=/status"),
        (FORM, b"command=/status&text=\xff".decode("latin-1")),
    ],
)
def test_signed_malformed_bodies_get_400_and_change_nothing(
    slack: Slack, caplog: pytest.LogCaptureFixture, content_type: str, body: str
) -> None:
    before = slack.rows()
    with caplog.at_level(logging.INFO):
        answer = send(slack, body.encode("latin-1"), content_type=content_type)
    assert answer.status == 400, answer.body
    assert answer.json()["error"] == "bad_request"
    assert slack.rows() == before
    assert slack.fake.calls_to("views.open") == []
    assert "Traceback" not in caplog.text


def test_a_command_that_says_payload_is_still_a_command(slack: Slack) -> None:
    # bolt takes any form body containing "payload" for an interactive one.
    reply = slack.reply("/incident", "open Bad payload -- The payload service fails.")
    assert reply.startswith("Opened incident #1")
    incident = slack.incident(1)
    assert incident.title == "Bad payload"
    assert incident.updates[0].body == "The payload service fails."


# --- signed values the forms never send: an error in the modal ---------------------------------


@pytest.fixture
def with_incident(slack: Slack) -> Slack:
    assert "Added API" in slack.reply("/component", "add API")
    assert "Opened incident #1" in slack.reply("/incident", "open Checkout errors")
    return slack


def test_a_bogus_status_impact_or_state_is_a_modal_error(
    with_incident: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    slack = with_incident
    api = code_of(slack, "API")
    meta = json.dumps({"number": 1})
    update = ui.post_update_modal(_view(slack, 1), [], metadata=meta)
    declare = ui.declare_incident_modal([ui.ComponentChoice(api, "API", "operational")])
    before = slack.rows()
    cases = [
        (update, {ui.MESSAGE: "x"}, ui.STATUS, {"status": "bogus"}),
        (update, {ui.MESSAGE: "x"}, ui.IMPACT, {"impact": "maintenance"}),
        (declare, {ui.TITLE: "x"}, ui.COMPONENT + api, {ui.COMPONENT + api: "on_fire"}),
    ]
    for view, answers, block, forged in cases:
        submitted = _forge(view, answers, forged)
        with caplog.at_level(logging.INFO):
            answer = slack.interact(submitted)
        assert answer.status == 200, answer.body
        data = answer.json()
        assert data["response_action"] == "errors"
        assert "not one this form offers" in data["errors"][block], data
    assert slack.rows() == before
    assert "Traceback" not in caplog.text
    assert "Sorry" not in caplog.text


def test_garbled_option_shapes_are_modal_errors_or_ignored(with_incident: Slack) -> None:
    slack = with_incident
    update = ui.post_update_modal(_view(slack, 1), [], metadata=json.dumps({"number": 1}))
    submitted = _forge(update, {ui.MESSAGE: "x"}, {})
    submitted["view"]["state"]["values"][ui.STATUS] = {ui.VALUE: {"selected_option": {"v": 1}}}
    submitted["view"]["state"]["values"]["junk"] = "not an object"
    before = slack.rows()
    answer = slack.interact(submitted)
    assert answer.status == 200 and answer.body == b""  # no status chosen: the update posts
    assert slack.incident(1).updates[-1].body == "x"
    assert len(slack.rows()["incident_updates"]) == len(before["incident_updates"]) + 1


def _view(slack: Slack, number: int) -> Any:
    from storage.snapshot import incident_view

    return incident_view(slack.incident(number))


def _forge(view: dict[str, Any], answers: dict[str, Any], forged: dict[str, str]) -> dict[str, Any]:
    """A view_submission of `view`, then each forged block's option set to a value as sent."""
    from tests.test_slack_http import state

    values = state(view, answers)["values"]
    for block, value in forged.items():
        values[block] = {ui.VALUE: {"type": "static_select", "selected_option": {"value": value}}}
    return {
        "type": "view_submission",
        "user": {"id": "U1", "team_id": "T0TEAM"},
        "team": {"id": "T0TEAM"},
        "view": {**view, "id": "V0FAKE", "state": {"values": values}},
    }


# --- one escaped line in the log ---------------------------------------------------------------


@pytest.mark.parametrize("sign", [True, False], ids=["signed-malformed", "unsigned"])
def test_a_body_cannot_forge_a_log_line(
    slack: Slack, caplog: pytest.LogCaptureFixture, sign: bool
) -> None:
    body = b"payload=notjson\nFAKE LOG LINE admin logged in\r\nFAKE too\xe2\x80\xa8FAKE"
    with caplog.at_level(logging.DEBUG):
        answer = send(slack, body, sign=sign)
    assert answer.status == (400 if sign else 401)
    assert "FAKE LOG LINE" in caplog.text  # it is logged, escaped, on the refusal's line
    assert no_line_starts_with_fake(caplog)
    (refusal,) = [r for r in caplog.records if r.name == "bot.slack.ingress"]
    assert "\n" not in refusal.getMessage() and "\r" not in refusal.getMessage()


def test_bolt_logs_an_unsigned_body_on_one_line(
    runtime: Runtime, settings: Settings, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    # The gate keeps unsigned bodies from bolt; were one to reach it, its own log line
    # (which quotes the body as sent) stays one line too.
    configured = Runtime(
        slack_settings(settings, fake, Path("/nonexistent")),
        engine=runtime.engine,
        clock=runtime.clock,
    )
    app = create_app(configured, gateway=SlackGateway("xoxb-test", base_url=fake.api_url))
    body = "command=/status&text=\nFAKE LOG LINE from bolt"
    with caplog.at_level(logging.DEBUG):
        response = app.dispatch(
            BoltRequest(
                body=body,
                headers={
                    "content-type": [FORM],
                    "x-slack-request-timestamp": [str(int(time.time()))],
                    "x-slack-signature": ["v0=" + "0" * 64],
                },
            )
        )
    assert response.status == 401
    assert "FAKE LOG LINE from bolt" in caplog.text  # bolt did log it
    assert no_line_starts_with_fake(caplog)


# --- replays and retries ------------------------------------------------------------------------


def test_a_replayed_command_is_answered_but_not_applied_twice(
    slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    body, ts = open_command(), str(int(time.time()))
    signature = sign_bytes(ts, body)
    first = send(slack, body, timestamp=ts, signature=signature)
    assert "Opened incident #1" in first.json()["text"]
    for extra in ({}, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}):
        with caplog.at_level(logging.INFO):
            again = send(slack, body, timestamp=ts, signature=signature, extra=extra)
        assert again.status == 200
        assert again.json() == {"response_type": "ephemeral", "text": ALREADY_DONE}
    assert incidents(slack) == 1
    assert "retry '1'" in caplog.text
    # The same command signed afresh is a new request, and is applied.
    assert "Opened incident #2" in send(slack, body, timestamp=str(int(ts) + 1)).json()["text"]


def test_a_replayed_button_or_form_is_acked_once_and_applied_once(slack: Slack) -> None:
    assert "Opened incident #1" in slack.reply("/incident", "open Checkout errors")
    body, ts = payload(button()), str(int(time.time()))
    signature = sign_bytes(ts, body)
    for _ in range(3):
        answer = send(slack, body, timestamp=ts, signature=signature)
        assert answer.status == 200 and answer.body == b""
    slack.wait_view()
    view = slack.opened_views()[0]
    submitted = payload(_forge(view, {ui.MESSAGE: "Once."}, {}))
    for _ in range(2):
        answer = send(slack, submitted, timestamp=ts, signature=None)  # same ts: same signature
        assert answer.status == 200 and answer.body == b""  # the modal closes either way
    assert [u.body for u in slack.incident(1).updates].count("Once.") == 1
    assert len(slack.opened_views()) == 1


def test_a_replay_to_another_process_is_recognised(
    slack: Slack,
    settings: Settings,
    engine: Engine,
    clock: FakeClock,
    fake: FakeSlack,
    tmp_path: Path,
) -> None:
    # A second server on the same database stands for another web worker: it shares
    # nothing with the first but the database.
    other_settings = slack_settings(settings, fake, tmp_path / "other")
    body, ts = open_command(), str(int(time.time()))
    signature = sign_bytes(ts, body)
    assert (
        "Opened incident #1" in send(slack, body, timestamp=ts, signature=signature).json()["text"]
    )
    for other in start(other_settings, engine, clock, fake):
        again = send(other, body, timestamp=ts, signature=signature)
        assert again.json()["text"] == ALREADY_DONE
    assert incidents(slack) == 1


def test_expired_requests_are_forgotten(slack: Slack) -> None:
    # bolt checks the timestamps again against the real clock: both requests stay
    # within 5 minutes of it, while the gate's clock moves on past the first's expiry.
    real = int(time.time())
    first_ts = real - WINDOW + 10
    now = [float(first_ts)]
    slack.server.web.slack_ingress = SlackIngress(slack.runtime, clock=lambda: now[0])
    assert send(slack, open_command("list"), timestamp=str(first_ts)).status == 200
    assert _seen(slack) == 1
    now[0] = first_ts + max(WINDOW + CLOCK_MARGIN, PURGE_EVERY) + 1
    assert send(slack, open_command("list"), timestamp=str(real)).status == 200
    assert _seen(slack) == 1  # the first one went; the new one is remembered


def _seen(slack: Slack) -> int:
    with slack.runtime.factory() as session:
        return int(session.scalar(select(func.count()).select_from(SeenRequest)) or 0)


def test_the_seen_window_in_storage(runtime: Runtime) -> None:
    at = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)
    with transaction(runtime.factory) as session:
        assert seen_requests.first_time(session, key="a" * 64, expires_at=at)
        assert not seen_requests.first_time(session, key="a" * 64, expires_at=at)
        assert seen_requests.first_time(session, key="b" * 64, expires_at=at + timedelta(1))
    with transaction(runtime.factory) as session:
        assert not seen_requests.first_time(session, key="b" * 64, expires_at=at)
        assert seen_requests.forget_expired(session, now=at) == 0  # not yet: expires *at*
        assert seen_requests.forget_expired(session, now=at + timedelta(seconds=1)) == 1
    with transaction(runtime.factory) as session:
        assert seen_requests.first_time(session, key="a" * 64, expires_at=at)


# --- a slash command is taken in by its own transaction -------------------------------------


def test_a_slash_command_is_taken_in_by_its_own_transaction(
    slack: Slack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay check rides in the command's transaction (one transaction on the ack's
    path, not two); a button's is the gate's own, as before."""
    alone: list[bool] = []
    real = seen_requests.first_time

    def noted(session: Session, **kw: Any) -> bool:
        alone.append(kw.get("alone", True))
        return real(session, **kw)

    monkeypatch.setattr(seen_requests, "first_time", noted)
    assert "Opened incident #1" in slack.reply("/incident", "open Slow -- Looking.")
    assert "Posted an update" in slack.reply("/incident", "update 1 -- Still.")
    assert alone == [False, False]
    assert send(slack, payload(button())).status == 200
    assert alone == [False, False, True]
    assert _seen(slack) == 3


@pytest.mark.parametrize(
    ("text", "settings_change", "answer"),
    [
        ("update 9 -- No such incident.", {}, "There is no incident #9"),
        (
            "open Slow -- Looking.",
            {"editors": frozenset({"U9"})},
            "only the editors set in STATUSBOT_EDITORS",
        ),
    ],
    ids=["bad-input", "not-an-editor"],
)
def test_a_replay_of_a_command_that_changed_nothing_is_still_already_done(
    settings: Settings,
    engine: Engine,
    clock: FakeClock,
    fake: FakeSlack,
    tmp_path: Path,
    text: str,
    settings_change: dict[str, object],
    answer: str,
) -> None:
    """The command's transaction was undone, but its request stays taken in (and a
    refusal is audited once)."""
    for slack in start(
        slack_settings(settings, fake, tmp_path, **settings_change), engine, clock, fake
    ):
        body, ts = open_command(text), str(int(time.time()))
        signature = sign_bytes(ts, body)
        first = send(slack, body, timestamp=ts, signature=signature)
        assert answer in first.json()["text"]
        again = send(slack, body, timestamp=ts, signature=signature)
        assert again.json() == {"response_type": "ephemeral", "text": ALREADY_DONE}
        with slack.runtime.factory() as session:
            denied = select(func.count()).where(AuditEvent.action.startswith("denied."))
            assert session.scalar(denied) == (1 if settings_change else 0)


def test_a_replayed_empty_incident_opens_one_form(slack: Slack) -> None:
    body, ts = open_command(""), str(int(time.time()))
    signature = sign_bytes(ts, body)
    assert send(slack, body, timestamp=ts, signature=signature).status == 200
    slack.wait_view()
    again = send(slack, body, timestamp=ts, signature=signature)
    assert again.json() == {"response_type": "ephemeral", "text": ALREADY_DONE}
    assert len(slack.opened_views()) == 1


def test_a_command_whose_context_could_not_be_built_is_still_taken_in(
    slack: Slack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building the context (the editors' lookup in Slack) comes before the command's
    transaction: when it fails, the request is taken in on its own, so a replay of it
    is "Already done" rather than run."""
    real = Services.context
    calls: list[str] = []

    def failing_once(self: Services, user: str, **kw: Any) -> Any:
        calls.append(user)
        if len(calls) == 1:
            raise RuntimeError("the lookup broke")
        return real(self, user, **kw)

    monkeypatch.setattr(Services, "context", failing_once)
    body, ts = open_command(), str(int(time.time()))
    signature = sign_bytes(ts, body)
    first = send(slack, body, timestamp=ts, signature=signature)
    assert first.status == 200 and first.json()["text"] == SORRY
    again = send(slack, body, timestamp=ts, signature=signature)
    assert again.json() == {"response_type": "ephemeral", "text": ALREADY_DONE}
    assert _seen(slack) == 1
