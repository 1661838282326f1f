"""Slack through the real HTTP server: signed slash commands, buttons and modals, a fake Slack.

Every request goes over HTTP to the same WSGI app `statusbot serve` runs (built
by `bot.serve.build`), signed with the signing secret as Slack signs it; every
Web API call goes to a fake Slack on localhost. One test runs gunicorn itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine, select
from sqlalchemy import text as sql

from bot.runtime import Runtime
from bot.serve import Server, build
from bot.settings import Settings
from bot.slack.listeners.services import SORRY, WORKING
from commands.result import Result
from renderers import slack_modals as ui
from storage.db import make_engine, make_reader
from storage.models import AuditEvent, Component, Incident, OutboxEntry
from tests.conftest import FakeClock
from tests.fake_slack import Call, FakeSlack
from tests.helpers import dump, free_port, incident_of, slash_command, wait_healthy
from tests.test_web import Answer, call, serving

SECRET = "test-signing-secret"
DEFAULT = object()


class Slack:
    """Drives statusbot as Slack does: signed form posts to /slack/events."""

    def __init__(self, base: str, fake: FakeSlack, server: Server) -> None:
        self.base = base
        self.fake = fake
        self.server = server
        self.runtime = server.runtime
        self._n = 0

    def post(
        self,
        body: str,
        *,
        secret: str | None = SECRET,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> Answer:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if secret is not None:
            ts = str(int(time.time()) if timestamp is None else timestamp)
            headers["X-Slack-Request-Timestamp"] = ts
            headers["X-Slack-Signature"] = signature or SignatureVerifier(
                secret
            ).generate_signature(timestamp=ts, body=body)
        return call(self.base, "POST", "/slack/events", body, headers)

    def response_url(self) -> str:
        self._n += 1
        return f"{self.fake.url}/response/r{self._n}"

    def command(self, command: str, text: str = "", *, user: str = "U1", **kw: Any) -> Answer:
        response_url = kw.pop("response_url", None) or self.response_url()
        body = urlencode(slash_command(command, text, user=user, response_url=response_url))
        return self.post(body, **kw)

    def reply(self, command: str, text: str = "", *, user: str = "U1") -> str:
        """A command's ephemeral reply, asserting it came in the ack."""
        answer = self.command(command, text, user=user)
        assert answer.status == 200, answer.body
        data = answer.json()
        assert data["response_type"] == "ephemeral"
        return str(data["text"])

    def interact(self, payload: dict[str, Any], **kw: Any) -> Answer:
        return self.post(urlencode({"payload": json.dumps(payload)}), **kw)

    def button(self, action_id: str, value: str, *, user: str = "U1", **kw: Any) -> Answer:
        return self.interact(
            {
                "type": "block_actions",
                "team": {"id": "T0TEAM", "domain": "example"},
                "user": {"id": user, "team_id": "T0TEAM"},
                "api_app_id": "A0APP",
                "token": "legacy",
                "trigger_id": "1337.43.button",
                "response_url": self.response_url(),
                "channel": {"id": "C0INCIDENTS", "name": "incidents"},
                "container": {"type": "message", "message_ts": "1700000000.000001"},
                "message": {"ts": "1700000000.000001", "text": "announcement"},
                "actions": [
                    {
                        "action_id": action_id,
                        "block_id": "actions",
                        "type": "button",
                        "value": value,
                        "action_ts": "1700000001.000001",
                    }
                ],
            },
            **kw,
        )

    def submit(
        self,
        view: dict[str, Any],
        answers: dict[str, Any] | None = None,
        *,
        user: str = "U1",
        **kw: Any,
    ) -> Answer:
        """Submit a modal as Slack would, each field at its initial value unless answered."""
        return self.interact(
            {
                "type": "view_submission",
                "team": {"id": "T0TEAM", "domain": "example"},
                "user": {"id": user, "team_id": "T0TEAM"},
                "api_app_id": "A0APP",
                "token": "legacy",
                "trigger_id": "1337.44.submit",
                "view": {
                    **view,
                    "id": "V0FAKE",
                    "team_id": "T0TEAM",
                    "hash": "1700000000.abc",
                    "state": state(view, answers or {}),
                },
            },
            **kw,
        )

    def opened_views(self) -> list[dict[str, Any]]:
        return [_view_of(c) for c in self.fake.calls_to("views.open")]

    def wait_view(self, count: int = 1) -> dict[str, Any]:
        return _view_of(self.fake.wait_for("views.open", count)[count - 1])

    def wait_response(self, count: int = 1) -> str:
        return str(self.fake.wait_for("response_url", count)[count - 1].params["text"])

    def rows(self, *, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
        """Every row, for "nothing was written"; the outbox without its delivery state,
        which the delivery worker changes as it goes, and not the gate's memory of
        the requests it took in (tests/test_slack_ingress.py looks at that)."""
        rows = dump(self.runtime.engine, skip=(*skip, "outbox", "announcements", "seen_requests"))
        with self.runtime.engine.connect() as conn:
            queued = conn.execute(
                select(
                    OutboxEntry.id,
                    OutboxEntry.channel,
                    OutboxEntry.event,
                    OutboxEntry.incident_id,
                    OutboxEntry.update_id,
                ).order_by(OutboxEntry.id)
            )
            rows["outbox"] = [tuple(r) for r in queued]
        return rows

    def incident(self, number: int) -> Incident:
        return incident_of(self.runtime, number)


def _view_of(c: Call) -> dict[str, Any]:
    view = c.params["view"]
    return json.loads(view) if isinstance(view, str) else dict(view)


def state(view: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """A view_submission's `state` for a modal: each input's answer or initial value."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element, block_id = block["element"], block["block_id"]
        answer = answers.get(block_id, DEFAULT)
        kind = element["type"]
        if kind == "plain_text_input":
            value = element.get("initial_value") if answer is DEFAULT else answer
            entry: dict[str, Any] = {"type": kind, "value": value or None}
        elif kind == "static_select":
            if answer is DEFAULT:
                option = element.get("initial_option")
            else:
                option = next((o for o in element["options"] if o["value"] == answer), None)
            entry = {"type": kind, "selected_option": option}
        else:  # checkboxes, multi_static_select
            if answer is DEFAULT:
                options = element.get("initial_options", [])
            else:
                options = [o for o in element["options"] if o["value"] in answer]
            entry = {"type": kind, "selected_options": options}
        values[block_id] = {element["action_id"]: entry}
    return {"values": values}


def slack_settings(settings: Settings, fake: FakeSlack, tmp_path: Path, **changes: Any) -> Settings:
    return dataclasses.replace(
        settings,
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=fake.api_url,
        page_dir=tmp_path / "public",
        **changes,
    )


def start(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeSlack, *, deadline: float = 2.0
) -> Iterator[Slack]:
    server = build(
        settings, runtime=Runtime(settings, engine=engine, clock=clock), deadline=deadline
    )
    try:
        with serving(server.web) as base:
            yield Slack(base, fake, server)
    finally:
        server.stop()


@pytest.fixture
def slack(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeSlack, tmp_path: Path
) -> Iterator[Slack]:
    yield from start(slack_settings(settings, fake, tmp_path), engine, clock, fake)


@pytest.fixture
def with_components(slack: Slack) -> Slack:
    for text in (
        "add API --description Our REST API",
        'add "Transactional emails" --group "Email Processing"',
        'add "Newsletter emails" --group "Email Processing"',
    ):
        assert "Added" in slack.reply("/component", text)
    return slack


def code_of(slack: Slack, name: str) -> str:
    with slack.runtime.factory() as session:
        return session.scalars(select(Component.code).where(Component.name == name)).one()


# --- every verb ------------------------------------------------------------------------------


def test_component_verbs(slack: Slack) -> None:
    for command, text, wanted in [
        ("/component", "help", "/component set NAME STATE"),
        ("/component", "add API --description Our REST API", "Added API"),
        ("/component", 'add "Newsletter emails" --group Email', "Added Newsletter emails in Email"),
        ("/component", "set API degraded -- Slow responses", "API is now Degraded Performance"),
        ("/component", "list", "• API: Degraded Performance"),
        ("/component", "rename api --to Public API", "Renamed API to Public API"),
        ("/component", "remove Newsletter emails", "Removed Newsletter emails from the page"),
    ]:
        assert wanted in slack.reply(command, text), text
    with slack.runtime.factory() as session:
        api = session.scalars(select(Component).where(Component.name == "Public API")).one()
        assert api.status == "degraded_performance"


def test_incident_verbs(with_components: Slack) -> None:
    slack = with_components
    steps = [
        ("help", "/incident open TITLE"),
        (
            "open Checkout errors --components API=major --impact critical -- Failing payments.",
            "Opened incident #1 “Checkout errors”",
        ),
        ("update #1 --status identified -- A bad deploy.", "Posted an update to #1: Identified"),
        ("list", "#1 Checkout errors"),
        ("show 1", "A bad deploy."),
        ("edit 1 --title Checkout failures", "Renamed #1 to “Checkout failures”"),
        ("edit 1 --update 1 -- Payments fail.", "Edited update 1 of #1"),
        ("resolve 1 -- Fixed.", "Resolved #1"),
        ("reopen 1 -- It is back.", "Reopened #1 as Identified"),
    ]
    for text, wanted in steps:
        assert wanted in slack.reply("/incident", text), text
    incident = slack.incident(1)
    assert incident.title == "Checkout failures"
    assert [u.status for u in incident.updates] == [
        "investigating",
        "identified",
        "resolved",
        "identified",
    ]


def test_maintenance_verbs(with_components: Slack) -> None:
    slack = with_components
    steps = [
        ("help", "/maintenance schedule TITLE"),
        (
            "schedule DB upgrade --start tomorrow 10:00 --end tomorrow 12:00 --components API",
            "Scheduled maintenance #1",
        ),
        ("update 1 -- Moved to the new cluster.", "#1 “DB upgrade” is now Scheduled"),
        ("list", "#1 DB upgrade"),
        ("show #1", "Moved to the new cluster."),
        ("start 1", "is now In progress"),
        ("complete 1 -- Done.", "is now Completed"),
        (
            "schedule Cache flush --start tomorrow 13:00 --end tomorrow 14:00",
            "Scheduled maintenance #2",
        ),
        ("cancel 2 -- Not needed.", "is now Cancelled"),
    ]
    for text, wanted in steps:
        assert wanted in slack.reply("/maintenance", text), text
    assert slack.incident(1).status == "completed"
    assert slack.incident(2).status == "cancelled"


def test_status_and_help_and_bad_input(with_components: Slack) -> None:
    slack = with_components
    assert "All Systems Operational" in slack.reply("/status")
    assert "Status page: https://status.example.com" in slack.reply("/status")
    assert "/status" in slack.reply("/status", "help")
    reply = slack.reply("/incident", "open")
    assert reply.startswith("Give it a title.")
    assert "Usage:\n```/incident open TITLE" in reply  # usage shown as code
    assert "has no 'frobnicate'" in slack.reply("/component", "frobnicate")


def test_when_is_read_in_the_persons_slack_time_zone(with_components: Slack) -> None:
    slack = with_components
    slack.fake.user_zones["U7"] = "America/New_York"
    # The fake clock reads 10:00 UTC, 06:00 in New York.
    assert "Opened incident #1" in slack.reply("/incident", "open Late --at 05:00", user="U7")
    assert "Opened incident #2" in slack.reply("/incident", "open Later --at 05:30", user="U7")
    started = slack.incident(1).started_at
    assert started.isoformat() == "2026-06-10T09:00:00+00:00"
    lookups = [c for c in slack.fake.calls_to("users.info") if c.params.get("user") == "U7"]
    assert len(lookups) == 1  # cached


# --- signatures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "forgery",
    [
        {"secret": "not-the-secret"},
        {"age": 6 * 60},  # seconds before now: Slack's limit is 5 minutes
        {"age": -6 * 60},
        {"secret": None},
        {"signature": "v0=" + "0" * 64},
        {"signature": "garbage"},
    ],
    ids=["forged", "stale", "future", "unsigned", "wrong-signature", "garbage-signature"],
)
def test_forged_stale_and_unsigned_requests_get_401_and_change_nothing(
    with_components: Slack, forgery: dict[str, Any]
) -> None:
    slack = with_components
    if "age" in forgery:  # a time taken now, not when the tests were collected
        forgery = {"timestamp": int(time.time()) - forgery["age"]}
    before = slack.rows()
    answer = slack.command("/incident", "open Forged -- nope", **forgery)
    assert answer.status == 401
    assert b"Forged" not in answer.body
    view = ui.declare_incident_modal([], metadata="{}")
    assert slack.submit(view, {ui.TITLE: "Forged too"}, **forgery).status == 401
    assert slack.button("incident_resolve", "1", **forgery).status == 401
    assert slack.rows() == before
    assert slack.fake.calls_to("response_url") == []
    assert slack.fake.calls_to("views.open") == []


def test_a_body_changed_after_signing_is_refused(with_components: Slack) -> None:
    slack = with_components
    before = slack.rows()
    ts = str(int(time.time()))
    signed = urlencode({"command": "/status", "text": "", "user_id": "U1"})
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=signed)
    tampered = urlencode({"command": "/incident", "text": "open Evil", "user_id": "U1"})
    answer = call(
        slack.base,
        "POST",
        "/slack/events",
        tampered,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        },
    )
    assert answer.status == 401
    assert slack.rows() == before


# --- modals ---------------------------------------------------------------------------------


def test_incident_with_no_text_opens_the_declare_modal(with_components: Slack) -> None:
    slack = with_components
    answer = slack.command("/incident", "  ")
    assert answer.status == 200 and answer.body == b""  # acked at once, no message
    view = slack.wait_view()
    assert view["callback_id"] == ui.DECLARE
    assert slack.fake.calls_to("views.open")[0].params["trigger_id"] == "1337.42.abcdef"
    labels = [b["label"]["text"] for b in view["blocks"] if b["type"] == "input"]
    assert "API (now Operational)" in labels
    assert "Email Processing/Newsletter emails (now Operational)" in labels


def test_declare_modal_submission_opens_an_incident(with_components: Slack) -> None:
    slack = with_components
    slack.command("/incident", response_url=f"{slack.fake.url}/response/declare")
    view = slack.wait_view()
    api = code_of(slack, "API")
    answer = slack.submit(
        view,
        {
            ui.TITLE: "Checkout errors",
            ui.STATUS: "identified",
            ui.COMPONENT + api: "partial_outage",
            ui.MESSAGE: "Payments fail for some cards.",
        },
    )
    assert answer.status == 200 and answer.body == b""  # the modal closes
    incident = slack.incident(1)
    assert incident.title == "Checkout errors"
    assert incident.status == "identified"
    assert incident.impact == "major"  # derived from the partial outage
    assert [a.component.name for a in incident.affected] == ["API"]
    assert incident.updates[0].body == "Payments fail for some cards."
    assert "Opened incident #1" in slack.wait_response()
    assert slack.fake.calls_to("response_url")[0].params["_path"] == "/response/declare"
    # The outbox worker was poked: the announcement goes out.
    posted = slack.fake.wait_for("chat.postMessage")
    assert posted[0].params["channel"] == "C0INCIDENTS"


@pytest.mark.parametrize(
    ("answers", "block"),
    [
        ({ui.TITLE: ""}, ui.TITLE),
        ({ui.TITLE: "   "}, ui.TITLE),
        ({ui.TITLE: "x" * 201}, ui.TITLE),
        ({ui.TITLE: "Fine", ui.MESSAGE: "x" * 3001}, ui.MESSAGE),
    ],
)
def test_declare_modal_validation_errors_write_nothing(
    with_components: Slack, answers: dict[str, Any], block: str
) -> None:
    slack = with_components
    view = ui.declare_incident_modal([], metadata="{}")
    before = slack.rows()
    answer = slack.submit(view, answers)
    assert answer.status == 200
    data = answer.json()
    assert data["response_action"] == "errors"
    assert list(data["errors"]) == [block]
    assert slack.rows() == before


def test_a_use_case_error_shows_in_the_modal(with_components: Slack) -> None:
    slack = with_components
    slack.reply("/incident", "open Gone")
    assert "Resolved #1" in slack.reply("/incident", "resolve 1")
    before = slack.rows()
    view = ui.post_update_modal(_view(slack, 1), [], metadata=json.dumps({"number": 1}))
    answer = slack.submit(view, {ui.STATUS: "identified", ui.MESSAGE: "Still broken?"})
    data = answer.json()
    assert data["response_action"] == "errors"
    assert "#1 is resolved. Reopen it first" in data["errors"][ui.MESSAGE]
    assert slack.rows() == before


def _view(slack: Slack, number: int) -> Any:
    from bot.slack.listeners.modals import incident_view

    return incident_view(slack.incident(number))


def test_post_update_button_opens_a_prefilled_modal_and_updates(with_components: Slack) -> None:
    slack = with_components
    slack.reply("/incident", "open Checkout errors --components API=major --status identified")
    answer = slack.button("incident_update", "1")
    assert answer.status == 200 and answer.body == b""
    view = slack.wait_view()
    assert view["callback_id"] == ui.UPDATE
    assert json.loads(view["private_metadata"])["number"] == 1
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks[ui.TITLE]["element"]["initial_value"] == "Checkout errors"
    assert blocks[ui.STATUS]["element"]["initial_option"]["value"] == "identified"
    api = code_of(slack, "API")
    assert blocks[ui.COMPONENT + api]["element"]["initial_option"]["value"] == "major_outage"

    answer = slack.submit(
        view,
        {
            ui.STATUS: "monitoring",
            ui.COMPONENT + api: "degraded_performance",
            ui.MESSAGE: "Fix out.",
        },
    )
    assert answer.status == 200 and answer.body == b""
    incident = slack.incident(1)
    assert incident.status == "monitoring"
    assert incident.updates[-1].body == "Fix out."
    assert [(c.component.name, c.new_status) for c in incident.updates[-1].changes] == [
        ("API", "degraded_performance")
    ]
    assert "Posted an update to #1: Monitoring" in slack.wait_response()


def test_update_modal_needs_a_message_and_can_rename(with_components: Slack) -> None:
    slack = with_components
    slack.reply("/incident", "open Checkout errors")
    slack.button("incident_update", "#1")
    view = slack.wait_view()
    before = slack.rows()
    data = slack.submit(view, {ui.MESSAGE: ""}).json()
    assert data == {"response_action": "errors", "errors": {ui.MESSAGE: data["errors"][ui.MESSAGE]}}
    assert slack.rows() == before
    assert slack.submit(view, {ui.TITLE: "Checkout failing", ui.MESSAGE: "Renamed."}).body == b""
    assert slack.incident(1).title == "Checkout failing"


def test_resolve_button_opens_the_resolve_modal_and_resolves(with_components: Slack) -> None:
    slack = with_components
    slack.reply("/incident", "open Checkout errors --components API=major")
    slack.button("incident_resolve", "1")
    view = slack.wait_view()
    assert view["callback_id"] == ui.RESOLVE
    assert "Checkout errors" in view["blocks"][0]["text"]["text"]
    assert slack.submit(view, {ui.NOTIFY: []}).body == b""
    incident = slack.incident(1)
    assert incident.status == "resolved"
    assert incident.updates[-1].body == "This incident has been resolved."
    assert not incident.updates[-1].deliver_notifications  # notify was unticked
    with slack.runtime.factory() as session:
        assert session.scalars(select(Component.status).where(Component.name == "API")).one() == (
            "operational"
        )
    # Resolving again from an old announcement: told, no modal.
    slack.button("incident_resolve", "1")
    assert "already resolved" in slack.wait_response(2)
    assert len(slack.opened_views()) == 1


def test_buttons_for_unknown_incidents_and_other_actions(with_components: Slack) -> None:
    slack = with_components
    assert slack.button("incident_update", "99").status == 200
    assert "no incident #99" in slack.wait_response()
    assert slack.button("incident_update", "not-a-number").status == 200
    assert "does not name an incident" in slack.wait_response(2)
    assert slack.button("view_page", "https://status.example.com").status == 200  # a link
    assert slack.opened_views() == []


# --- who may change things ----------------------------------------------------------------


@pytest.fixture
def guarded(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeSlack, tmp_path: Path
) -> Iterator[Slack]:
    fake.usergroups["S0ONCALL"] = ["U0MEMBER"]
    editors = frozenset({"U0BOSS", "S0ONCALL"})
    configured = slack_settings(settings, fake, tmp_path, editors=editors)
    yield from start(configured, engine, clock, fake)


def test_a_non_editor_is_refused_and_audited(guarded: Slack) -> None:
    slack = guarded
    assert "Added API" in slack.reply("/component", "add API", user="U0BOSS")
    before = slack.rows(skip=("audit_events",))
    reply = slack.reply("/incident", "open Sneaky", user="U0RANDOM")
    assert "may not incident open" in reply
    assert "STATUSBOT_EDITORS" in reply
    assert "All Systems Operational" in slack.reply("/status", user="U0RANDOM")
    assert "API" in slack.reply("/component", "list", user="U0RANDOM")
    # The modal is refused too, before it opens.
    slack.command("/incident", user="U0RANDOM")
    assert "may not incident open" in slack.wait_response()
    assert slack.opened_views() == []
    # A submission of a modal obtained anyhow is refused in the modal.
    data = slack.submit(ui.declare_incident_modal([]), {ui.TITLE: "Sneaky"}, user="U0RANDOM").json()
    assert "may not incident open" in data["errors"][ui.TITLE]
    assert slack.rows(skip=("audit_events",)) == before
    with slack.runtime.factory() as session:
        denied = session.scalars(
            select(AuditEvent.action).where(AuditEvent.actor == "U0RANDOM")
        ).all()
    assert denied == ["denied.incident.open"] * 3


def test_a_non_editor_can_not_update_or_resolve_by_button_or_form(guarded: Slack) -> None:
    slack = guarded
    assert "Added API" in slack.reply("/component", "add API", user="U0BOSS")
    assert "Opened incident #1" in slack.reply(
        "/incident", "open Checkout errors --components API=major", user="U0BOSS"
    )
    shown = _view(slack, 1)
    before = slack.rows(skip=("audit_events",))
    # The buttons on the announcement: told why, and no modal opens.
    assert slack.button("incident_update", "1", user="U0RANDOM").status == 200
    assert "may not incident update" in slack.wait_response(1)
    assert slack.button("incident_resolve", "1", user="U0RANDOM").status == 200
    assert "may not incident resolve" in slack.wait_response(2)
    assert slack.opened_views() == []
    # The forms, obtained anyhow (an editor's, say): refused in the modal.
    meta = json.dumps({"number": 1})
    update = ui.post_update_modal(shown, [], metadata=meta)
    data = slack.submit(update, {ui.MESSAGE: "Sneaky update."}, user="U0RANDOM").json()
    assert data["response_action"] == "errors"
    assert "may not incident update" in data["errors"][ui.MESSAGE]
    resolve = ui.resolve_modal(shown, metadata=meta)
    data = slack.submit(resolve, {}, user="U0RANDOM").json()
    assert data["response_action"] == "errors"
    assert "may not incident resolve" in data["errors"][ui.MESSAGE]
    assert slack.rows(skip=("audit_events",)) == before
    assert slack.incident(1).status == "investigating"
    with slack.runtime.factory() as session:
        denied = session.scalars(
            select(AuditEvent.action).where(AuditEvent.actor == "U0RANDOM").order_by(AuditEvent.id)
        ).all()
    assert denied == ["denied.incident.update", "denied.incident.resolve"] * 2


def test_an_editor_by_user_group(guarded: Slack) -> None:
    slack = guarded
    assert "Added API" in slack.reply("/component", "add API", user="U0MEMBER")
    assert "Opened incident #1" in slack.reply("/incident", "open Fine", user="U0MEMBER")
    lookups = slack.fake.calls_to("usergroups.users.list")
    assert [c.params["usergroup"] for c in lookups] == ["S0ONCALL"]  # then cached


# --- escaping ---------------------------------------------------------------------------------


def test_an_xss_payload_as_slack_sends_it_is_stored_and_rendered_escaped(slack: Slack) -> None:
    text = "open &lt;script&gt;alert(1)&lt;/script&gt; -- &lt;img src=x onerror=alert(2)&gt; &amp;"
    reply = slack.reply("/incident", text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in reply  # shown literally in Slack too
    incident = slack.incident(1)
    assert incident.title == "<script>alert(1)</script>"
    assert incident.updates[0].body == "<img src=x onerror=alert(2)> &"
    assert slack.server.pages.flush(10)
    for path in ("/", "/incidents/1"):
        page = call(slack.base, "GET", path)
        assert page.status == 200, path
        html = page.body.decode()
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    summary = call(slack.base, "GET", "/api/v2/incidents.json").json()
    assert summary["incidents"][0]["name"] == "<script>alert(1)</script>"  # JSON stays data


# --- the 3-second rule ------------------------------------------------------------------------


@pytest.fixture
def slow(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeSlack, tmp_path: Path
) -> Iterator[tuple[Slack, threading.Event]]:
    release = threading.Event()
    for stack in start(slack_settings(settings, fake, tmp_path), engine, clock, fake, deadline=0.3):

        def slow_hook(result: Result) -> None:
            release.wait(30)

        stack.runtime.after_change.insert(0, slow_hook)
        try:
            yield stack, release
        finally:
            release.set()


def test_a_slow_command_is_acked_in_time_and_answered_later(
    slow: tuple[Slack, threading.Event],
) -> None:
    slack, release = slow
    started = time.monotonic()
    answer = slack.command("/component", "add API")
    took = time.monotonic() - started
    assert answer.status == 200
    assert answer.json() == {"response_type": "ephemeral", "text": WORKING}
    assert took < 2.0
    assert slack.fake.calls_to("response_url") == []
    release.set()
    assert slack.wait_response() == "Added API: Operational."
    assert slack.fake.calls_to("response_url")[0].params["response_type"] == "ephemeral"


def test_a_slow_modal_submission_closes_and_answers_later(
    slow: tuple[Slack, threading.Event],
) -> None:
    slack, release = slow
    meta = json.dumps({"response_url": f"{slack.fake.url}/response/modal"})
    started = time.monotonic()
    answer = slack.submit(ui.declare_incident_modal([], metadata=meta), {ui.TITLE: "Slow"})
    assert time.monotonic() - started < 2.0
    assert answer.status == 200 and answer.body == b""
    release.set()
    assert "Opened incident #1" in slack.wait_response()


def test_an_unexpected_error_is_a_clear_reply_not_a_stack_trace(
    slack: Slack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("bot.slack.listeners.commands.execute", broken)
    data = slack.command("/status").json()
    assert data == {"response_type": "ephemeral", "text": SORRY}
    monkeypatch.setattr("bot.slack.listeners.modals.apply", broken)
    data = slack.submit(ui.declare_incident_modal([]), {ui.TITLE: "Boom"}).json()
    assert data["response_action"] == "errors" and "boom" not in json.dumps(data)


# --- gunicorn, end to end ---------------------------------------------------------------------


def test_statusbot_serve_under_gunicorn(
    empty_db: tuple[Engine, str], fake: FakeSlack, tmp_path: Path
) -> None:
    from storage import migrate

    engine, url = empty_db
    if engine.dialect.name != "sqlite":
        migrate.upgrade(engine)  # PostgreSQL is migrated by the release step, not by serve
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(port),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "STATUSBOT_PAGE_DIR": str(tmp_path / "public"),
        "STATUSBOT_NOTIFY_CHANNELS": "C0INCIDENTS",
        "STATUSBOT_SCHEDULER": "off",
    }
    env.pop("SLACK_APP_TOKEN", None)
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process)
        slack = Slack.__new__(Slack)
        slack.base, slack.fake, slack._n = base, fake, 0
        assert "Added API" in slack.reply("/component", "add API")
        assert "Opened incident #1" in slack.reply("/incident", "open Outage --components API=down")
        assert slack.command("/status", secret="wrong").status == 401
        fake.wait_for("chat.postMessage")
        deadline = time.monotonic() + 10
        while call(base, "GET", "/incidents/1").status != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b"Outage" in call(base, "GET", "/incidents/1").body
        assert call(base, "GET", "/%2e%2e%2fpyproject.toml").status == 404
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    log = output.decode()
    assert process.returncode == 0, log
    assert "Slack is on" in log
    assert '"POST /slack/events HTTP/1.1" 200' in log  # the access log, on stdout


# --- the manifest and the serving machinery ------------------------------------------------


def test_the_manifest_matches_the_app() -> None:
    yaml = pytest.importorskip("yaml")
    from commands.dispatch import COMMANDS

    manifest = yaml.safe_load((Path(__file__).resolve().parent.parent / "manifest.yml").read_text())
    commands = manifest["features"]["slash_commands"]
    assert sorted(c["command"] for c in commands) == sorted(COMMANDS)
    for command in commands:
        assert command["url"] == "https://YOUR-HOST/slack/events"
        assert command["should_escape"] is True  # <@U1> and <#C1|name> arrive as markup
        assert command["description"] and len(command["usage_hint"]) <= 1000
    assert manifest["settings"]["interactivity"] == {
        "is_enabled": True,
        "request_url": "https://YOUR-HOST/slack/events",
    }
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "commands",
        "chat:write",
        "chat:write.public",
        "usergroups:read",
        "users:read",
        "channels:history",
        "groups:history",
    }


def test_sqlite_transactions_take_turns_in_order(tmp_path: Path, settings: Settings) -> None:
    from bot.serve import open_runtime

    configured = dataclasses.replace(settings, database_url=f"sqlite:///{tmp_path / 'x.db'}")
    runtime = open_runtime(configured)
    from storage.models import Base

    Base.metadata.create_all(runtime.engine)
    assert (tmp_path / "x.db-turn").exists()  # the lock file other processes meet at
    errors: list[str] = []

    def client(n: int) -> None:
        for i in range(10):
            result = runtime.run("/component", f"add C{n}x{i}", user="U1")
            if not result.ok:
                errors.append(result.reply)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # A reader (the page's) sees the data while a writer holds the write lock.
    reader = make_engine(configured.database_url)
    with runtime.engine.begin() as writing, make_reader(reader)() as session:
        writing.exec_driver_sql("UPDATE components SET description = 'held'")
        count = session.execute(sql("SELECT count(*) FROM components")).scalar()
        assert count == 80
    reader.dispose()
    runtime.engine.dispose()


def test_turns_are_first_come_first_served_and_reentrant(tmp_path: Path) -> None:
    from bot.serve import _Turns

    turns = _Turns(str(tmp_path / "lock"))
    turns.take()
    turns.take()  # the holder may take it again
    order: list[int] = []

    def wait_in_line(n: int) -> None:
        turns.take()
        order.append(n)
        turns.give()

    threads = []
    for n in range(5):
        thread = threading.Thread(target=wait_in_line, args=(n,))
        thread.start()
        while len(turns._queue) <= n:  # in line before the next one comes
            time.sleep(0.001)
        threads.append(thread)
    turns.give()
    assert order == []  # still held once
    turns.give()
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3, 4]


def test_web_workers_hand_changes_to_the_background_process() -> None:
    from bot.serve import Background

    background = Background(Settings(), on_start=())
    page = background.children[0].read  # the page process's end of its pipe
    background.notify([12, 3, 12])
    background.notify([])
    background.notify(range(5000))  # too many to name: sent as "something changed"
    os.set_blocking(page, False)
    assert os.read(page, 65536) == b"3 12\n\n\n"
    # A full pipe drops news rather than block a web worker, and never tears a message.
    news = range(1000, 1800)  # 3,999 characters: as long as a named change gets
    line = " ".join(map(str, news)).encode() + b"\n"
    sent = 100  # far more than a pipe holds (64 KiB on Linux: 16 of these)
    flood = threading.Thread(target=lambda: [background.notify(news) for _ in range(sent)])
    flood.start()
    flood.join(10)
    assert not flood.is_alive(), "notify blocked on a full pipe"
    heard = b""
    while chunk := _read_some(page):
        heard += chunk
    assert 0 < len(heard) // len(line) < sent  # some went through, the rest were dropped
    assert heard == line * (len(heard) // len(line))  # each one whole
    background.notify([7])  # read, the pipe takes news again
    assert os.read(page, 65536) == b"7\n"


def _read_some(fd: int) -> bytes:
    """What a non-blocking pipe holds now (b"" when empty)."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


def test_postgresql_delivers_from_a_background_process_of_its_own() -> None:
    """Every change reaches both processes' pipes: the page's and the deliveries'."""
    from bot.serve import DELIVERY, PAGE, Background

    on_sqlite = Background(Settings(), on_start=())
    assert [c.role for c in on_sqlite.children] == [PAGE]  # the web worker delivers
    scaled = Background(
        Settings(database_url="postgresql://statusbot@db.invalid/statusbot"), on_start=()
    )
    assert [c.role for c in scaled.children] == [PAGE, DELIVERY]
    scaled.notify([5, 2])
    for child in scaled.children:
        os.set_blocking(child.read, False)
        assert os.read(child.read, 65536) == b"2 5\n"
    for child in (*on_sqlite.children, *scaled.children):
        os.close(child.read)
        os.close(child.write)


def test_web_workers_default_to_one_per_core_on_postgresql_and_one_on_sqlite(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.serve import MAX_DEFAULT_WORKERS, default_workers

    shared = Runtime(Settings(database_url="postgresql://statusbot@db.invalid/statusbot"))
    embedded = Runtime(Settings(database_url="sqlite:///:memory:"))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert default_workers(shared, environ={}) == 2
    assert default_workers(embedded, environ={}) is None  # gunicorn's own default: 1
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert default_workers(shared, environ={}) == MAX_DEFAULT_WORKERS
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert default_workers(shared, environ={}) == 1
    # WEB_CONCURRENCY (or GUNICORN_CMD_ARGS --workers) always wins.
    assert default_workers(shared, environ={"WEB_CONCURRENCY": "3"}) is None
    shared.engine.dispose()
    embedded.engine.dispose()


def test_a_background_process_hears_a_stop_signal_however_many_come() -> None:
    """The stop handler takes no lock (a threading.Event's did, and a signal arriving
    inside it deadlocked the process): each signal only sets the flag again."""
    from bot.serve import StopSignal

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        stop = StopSignal().install()
        assert not stop.asked
        for _ in range(3):
            os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.asked
        stop.handle(signal.SIGTERM, None)  # again, as a signal inside the handler would
        assert stop.asked
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
