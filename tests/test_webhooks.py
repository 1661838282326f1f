"""Webhooks to subscribers (SPEC §9): shape, signature, retries, quarantine, address checks.

Deliveries go over real HTTP to receivers on 127.0.0.1 (so with
STATUSBOT_WEBHOOK_ALLOW_PRIVATE on); the address checks use injected resolvers and
never connect anywhere but loopback.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from bot.notify import http
from bot.notify.webhook import QUARANTINED_EVENT, WebhookSender, check_endpoint
from bot.notify.worker import Delivered, GiveUp, Job, OutboxDeliverer, Retry
from bot.runtime import Runtime
from bot.settings import Settings, SettingsError
from commands import endpoints
from storage import outbox
from storage import subscribers as subscriber_store
from storage.models import Component, OutboxEntry, StatusChange, Subscriber
from storage.rules import page_status
from tests.conftest import FakeClock

DATA = Path(__file__).parent / "data"
TZ = "Australia/Sydney"


# --- receivers ------------------------------------------------------------------------


class Receiver:
    """A real HTTP server on a loopback address that answers from a script, and keeps
    every request it got (path, headers, body)."""

    def __init__(self, answers: Sequence[int] = (), *, host: str = "127.0.0.1", port: int = 0):
        self.answers = list(answers)
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        self.delay = 0.0
        self.location = "/elsewhere"
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.got.append((self.path, dict(self.headers.items()), body))
                if receiver.delay:
                    time.sleep(receiver.delay)  # a slow receiver: the client's deadline is real
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


# --- data -----------------------------------------------------------------------------


def webhook_subscriber(rt: Runtime, url: str, **values: Any) -> Subscriber:
    with rt.factory.begin() as session:
        sub = subscriber_store.add(
            session,
            kind=subscriber_store.WEBHOOK,
            email="ops@example.com",
            endpoint=url,
            source="cli",
            now=rt.clock(),
            confirmed=True,
        )
        for key, value in values.items():
            setattr(sub, key, value)
        session.flush()
        session.expunge(sub)
        return sub


def open_incident(rt: Runtime) -> int:
    assert rt.run_line("/component add API", user="U1").ok
    result = rt.run_line(
        "/incident open Slow API --impact minor --components API=partial -- Looking into it",
        user="U1",
    )
    assert result.ok
    rt.clock.advance(minutes=5)  # type: ignore[attr-defined]
    assert rt.run_line("/incident update 1 --status identified -- Found it", user="U1").ok
    with rt.factory() as session:
        from storage import incidents

        found = incidents.get(session, number=1)
        assert found is not None
        return found.id


def enqueue_incident(rt: Runtime, sub: Subscriber, incident_id: int, n: int = 1) -> list[int]:
    with rt.factory.begin() as session:
        ids: list[int] = []
        for _ in range(n):
            ids += outbox.enqueue(
                session,
                channels=[sub.code],
                event="incident.updated",
                at=rt.clock(),
                incident_id=incident_id,
                payload={"number": 1, "components": []},
                kind=outbox.Kind.WEBHOOK,
            )
        return ids


def enqueue_component_change(rt: Runtime, sub: Subscriber) -> int:
    with rt.factory.begin() as session:
        component = session.scalars(select(Component)).one()
        change = session.scalars(
            select(StatusChange).order_by(StatusChange.id.desc()).limit(1)
        ).one()
        (entry_id,) = outbox.enqueue(
            session,
            channels=[sub.code],
            event="component.changed",
            at=rt.clock(),
            payload={
                "component_id": component.id,
                "old_status": "operational",
                "new_status": "partial_outage",
                "change_id": change.id,
            },
            kind=outbox.Kind.WEBHOOK,
        )
        return entry_id


def sender(
    rt: Runtime,
    *,
    allow_private: bool = True,
    clock: Callable[[], datetime] | None = None,
    **kw: Any,
) -> WebhookSender:
    # Signatures carry the real time: receivers (and Webhook.verify) check it is recent.
    return WebhookSender(
        rt.factory,
        page_url=rt.settings.page_url,
        tz=rt.settings.tz,
        allow_private=allow_private,
        clock=clock or (lambda: datetime.now(UTC)),
        **kw,
    )


def entry(factory: sessionmaker[Session], entry_id: int) -> OutboxEntry:
    with factory() as session:
        found = session.get(OutboxEntry, entry_id)
        assert found is not None
        return found


# --- payload shape --------------------------------------------------------------------


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape_problems(shape: object, value: object, where: str = "$") -> list[str]:
    """Where `value` lacks a key of `shape` or has another JSON type."""
    if isinstance(shape, str):
        allowed = shape.split("|")
        return [] if json_type(value) in allowed else [f"{where}: {json_type(value)} not {shape}"]
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{where}: {json_type(value)} not array"]
        if not value:
            return [f"{where}: empty, so its items can't be checked"]
        return [
            p
            for i, item in enumerate(value)
            for p in shape_problems(shape[0], item, f"{where}[{i}]")
        ]
    assert isinstance(shape, dict)
    if not isinstance(value, dict):
        return [f"{where}: {json_type(value)} not object"]
    problems = []
    for key, sub in shape.items():
        if key.startswith("_"):
            continue
        if key not in value:
            problems.append(f"{where}.{key}: missing")
        else:
            problems += shape_problems(sub, value[key], f"{where}.{key}")
    return problems


def test_the_shape_checker_catches_a_missing_key_and_a_wrong_type() -> None:
    shape = {"a": "string", "b": [{"c": "number|null"}]}
    assert shape_problems(shape, {"a": "x", "b": [{"c": None}]}) == []
    assert shape_problems(shape, {"b": [{"c": "1"}]}) == [
        "$.a: missing",
        "$.b[0].c: string not number|null",
    ]


@pytest.mark.db
def test_incident_payload_has_every_key_of_statuspages_with_its_type(
    runtime: Runtime, receiver: Receiver
) -> None:
    incident_id = open_incident(runtime)
    sub = webhook_subscriber(runtime, receiver.url())
    enqueue_incident(runtime, sub, incident_id)
    OutboxDeliverer(runtime.factory, sender(runtime), clock=runtime.clock).deliver_pending()
    (_, _, body) = receiver.got[0]
    payload = json.loads(body)
    shape = json.loads((DATA / "statuspage_webhook_incident.json").read_text())
    assert shape_problems(shape, payload) == []
    incident = payload["incident"]
    assert incident["id"] == "1" and incident["name"] == "Slow API"
    assert [u["status"] for u in incident["incident_updates"]] == ["identified", "investigating"]
    assert incident["components"][0]["name"] == "API"
    assert payload["meta"]["unsubscribe"] == f"https://status.example.com/unsubscribe/{sub.token}"
    expected = page_status(["partial_outage"], ["minor"])  # the page's rollup, as v2 has it
    assert payload["page"]["status_indicator"] == expected.indicator != "none"
    assert payload["page"]["status_description"] == expected.description


@pytest.mark.db
def test_incident_payload_is_the_v2_incident_plus_the_webhook_fields(
    runtime: Runtime, receiver: Receiver, tmp_path: Path
) -> None:
    """One mapping: every field of the v2 incidents.json object is in the webhook, equal."""
    from dataclasses import replace

    from bot.publish import Publisher

    runtime.settings = replace(runtime.settings, page_dir=tmp_path)
    incident_id = open_incident(runtime)
    sub = webhook_subscriber(runtime, receiver.url())
    enqueue_incident(runtime, sub, incident_id)
    OutboxDeliverer(runtime.factory, sender(runtime), clock=runtime.clock).deliver_pending()
    hooked = json.loads(receiver.got[0][2])["incident"]
    Publisher(runtime).publish()
    v2 = json.loads((tmp_path / "api/v2/incidents.json").read_text())
    (listed,) = v2["incidents"]
    for key, value in listed.items():
        if key == "incident_updates":
            for ours, theirs in zip(hooked[key], value, strict=True):
                assert {k: ours[k] for k in theirs} == theirs
        else:
            assert hooked[key] == value, key


@pytest.mark.db
def test_component_payload_has_every_key_of_statuspages_with_its_type(
    runtime: Runtime, receiver: Receiver
) -> None:
    open_incident(runtime)
    sub = webhook_subscriber(runtime, receiver.url())
    enqueue_component_change(runtime, sub)
    OutboxDeliverer(runtime.factory, sender(runtime), clock=runtime.clock).deliver_pending()
    payload = json.loads(receiver.got[0][2])
    shape = json.loads((DATA / "statuspage_webhook_component.json").read_text())
    assert shape_problems(shape, payload) == []
    update = payload["component_update"]
    assert update["component_type"] == "Component"
    assert update["component_id"] == payload["component"]["id"]
    assert (update["old_status"], update["new_status"]) == ("operational", "partial_outage")
    assert "incident" not in payload


# --- delivery -------------------------------------------------------------------------


@pytest.mark.db
def test_a_webhook_is_signed_for_the_subscriber_and_verifies(
    runtime: Runtime, receiver: Receiver
) -> None:
    incident_id = open_incident(runtime)
    sub = webhook_subscriber(runtime, receiver.url("/hook?team=ops"))
    (entry_id,) = enqueue_incident(runtime, sub, incident_id)
    sent = OutboxDeliverer(runtime.factory, sender(runtime), clock=runtime.clock)
    assert sent.deliver_pending() == 1
    (path, headers, body) = receiver.got[0]
    assert path == "/hook?team=ops"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "statusbot"
    assert headers["webhook-id"] == f"msg_{entry_id}"
    assert sub.secret and sub.secret.startswith("whsec_")
    verified = Webhook(sub.secret).verify(body, headers)
    assert verified["incident"]["id"] == "1"
    with pytest.raises(Exception, match="signature"):
        Webhook(subscriber_store.new_secret()).verify(body, headers)
    assert entry(runtime.factory, entry_id).delivered_at is not None


@pytest.mark.db
def test_a_500_is_retried_with_the_same_id_and_then_delivered_once(
    runtime: Runtime, clock: FakeClock
) -> None:
    receiver = Receiver([500])
    try:
        incident_id = open_incident(runtime)
        sub = webhook_subscriber(runtime, receiver.url())
        (entry_id,) = enqueue_incident(runtime, sub, incident_id)
        deliverer = OutboxDeliverer(runtime.factory, sender(runtime), clock=clock)
        assert deliverer.deliver_pending() == 0
        failed = entry(runtime.factory, entry_id)
        assert failed.attempts == 1 and "HTTP 500" in (failed.last_error or "")
        assert deliverer.deliver_pending() == 0, "it waits for its retry"
        clock.advance(seconds=10)
        assert deliverer.deliver_pending() == 1
        assert deliverer.deliver_pending() == 0
        ids = [h["webhook-id"] for _, h, _ in receiver.got]
        assert ids == [f"msg_{entry_id}"] * 2, "one delivery, the same id on its retry"
        assert entry(runtime.factory, entry_id).delivered_at is not None
    finally:
        receiver.close()


@pytest.mark.db
def test_a_redirect_is_not_followed_and_is_retried(runtime: Runtime) -> None:
    target = Receiver()
    redirecting = Receiver([302])
    redirecting.location = target.url("/stolen")
    try:
        incident_id = open_incident(runtime)
        sub = webhook_subscriber(runtime, redirecting.url())
        (entry_id,) = enqueue_incident(runtime, sub, incident_id)
        deliverer = OutboxDeliverer(runtime.factory, sender(runtime), clock=runtime.clock)
        assert deliverer.deliver_pending() == 0
        assert target.got == [], "the redirect's target was never asked"
        failed = entry(runtime.factory, entry_id)
        assert failed.delivered_at is None and failed.failed_at is None
        assert "302" in (failed.last_error or "") and "not redirected" in (failed.last_error or "")
    finally:
        target.close()
        redirecting.close()


@pytest.mark.db
def test_a_receiver_slower_than_the_deadline_is_retried(
    runtime: Runtime, receiver: Receiver
) -> None:
    # The receiver takes 5 s; the deadline is 0.3 s. The pass also claims and records in
    # the database, which on a loaded machine took up to 1.6 s: well short of 5 s either
    # way, so only the deadline can have ended the post.
    receiver.delay = 5.0
    incident_id = open_incident(runtime)
    sub = webhook_subscriber(runtime, receiver.url())
    (entry_id,) = enqueue_incident(runtime, sub, incident_id)
    deliverer = OutboxDeliverer(runtime.factory, sender(runtime, deadline=0.3), clock=runtime.clock)
    started = time.monotonic()
    assert deliverer.deliver_pending() == 0
    assert time.monotonic() - started < 3.5, "the deadline, not the receiver, ended it"
    failed = entry(runtime.factory, entry_id)
    assert failed.attempts == 1 and failed.failed_at is None
    assert "could not be reached" in (failed.last_error or "")


@pytest.mark.db
def test_a_day_of_failures_quarantines_the_subscriber_and_tells_its_email(
    runtime: Runtime, clock: FakeClock
) -> None:
    receiver = Receiver([503] * 100)
    try:
        incident_id = open_incident(runtime)
        sub = webhook_subscriber(runtime, receiver.url())
        (entry_id,) = enqueue_incident(runtime, sub, incident_id)
        deliverer = OutboxDeliverer(runtime.factory, sender(runtime, clock=clock), clock=clock)
        for _ in range(40):
            deliverer.deliver_pending()
            if entry(runtime.factory, entry_id).failed_at is not None:
                break
            clock.advance(hours=1)
        given_up = entry(runtime.factory, entry_id)
        assert given_up.failed_at is not None and "HTTP 503" in (given_up.last_error or "")
        with runtime.factory() as session:
            row = session.scalars(select(Subscriber).where(Subscriber.code == sub.code)).one()
            assert row.quarantined_at is not None and "HTTP 503" in (row.last_error or "")
            mails = list(
                session.scalars(select(OutboxEntry).where(OutboxEntry.kind == outbox.Kind.EMAIL))
            )
            assert subscriber_store.count_active(session)["webhook"] == 0
        assert [(m.channel, m.event) for m in mails] == [(sub.code, QUARANTINED_EVENT)]
        assert mails[0].payload["endpoint"] == receiver.url()
        assert "HTTP 503" in mails[0].payload["error"]
    finally:
        receiver.close()


@pytest.mark.db
def test_nothing_is_sent_to_a_quarantined_subscriber_and_it_is_not_quarantined_twice(
    runtime: Runtime, receiver: Receiver
) -> None:
    incident_id = open_incident(runtime)
    sub = webhook_subscriber(runtime, receiver.url(), quarantined_at=runtime.clock())
    (entry_id,) = enqueue_incident(runtime, sub, incident_id)
    OutboxDeliverer(runtime.factory, sender(runtime), clock=runtime.clock).deliver_pending()
    assert receiver.got == []
    skipped = entry(runtime.factory, entry_id)
    assert skipped.failed_at is not None and "no longer subscribed" in (skipped.last_error or "")
    with runtime.factory() as session:
        kinds = list(session.scalars(select(OutboxEntry.kind)))
    assert outbox.Kind.EMAIL not in kinds


@pytest.mark.db
def test_a_private_address_is_given_up_at_once_and_quarantined(
    runtime: Runtime, receiver: Receiver
) -> None:
    incident_id = open_incident(runtime)
    sub = webhook_subscriber(runtime, receiver.url())
    (entry_id,) = enqueue_incident(runtime, sub, incident_id)
    deliverer = OutboxDeliverer(
        runtime.factory, sender(runtime, allow_private=False), clock=runtime.clock
    )
    assert deliverer.deliver_pending() == 0
    assert receiver.got == [], "never connected"
    refused = entry(runtime.factory, entry_id)
    assert refused.failed_at is not None and "loopback" in (refused.last_error or "")
    with runtime.factory() as session:
        row = session.scalars(select(Subscriber).where(Subscriber.code == sub.code)).one()
        assert row.quarantined_at is not None
        assert session.scalars(
            select(OutboxEntry).where(OutboxEntry.event == QUARANTINED_EVENT)
        ).one()


# --- the address checks ---------------------------------------------------------------


def resolving_to(*answers: str) -> Callable[[str, int], list[str]]:
    def resolver(host: str, port: int) -> list[str]:
        return list(answers)

    return resolver


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[2002:7f00:1::]/hook",  # 6to4 around 127.0.0.1
        "http://[64:ff9b::a00:1]/hook",  # NAT64 around 10.0.0.1
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://100.64.0.1/hook",  # carrier-grade NAT
        "http://192.168.1.1/hook",
    ],
)
def test_private_addresses_are_refused(url: str) -> None:
    reason = check_endpoint(url, allow_private=False, resolver=resolving_to("8.8.8.8"))
    assert reason is not None and "STATUSBOT_WEBHOOK_ALLOW_PRIVATE" in reason
    assert check_endpoint(url, allow_private=True, resolver=resolving_to("8.8.8.8")) is None


def test_a_name_resolving_to_loopback_is_refused() -> None:
    # The real resolver: "localhost" is answered from /etc/hosts, not the network.
    reason = check_endpoint("http://localhost:9/hook", allow_private=False)
    assert reason is not None and "loopback" in reason


def test_a_name_with_any_private_answer_is_refused() -> None:
    reason = check_endpoint(
        "https://hooks.example.com/x",
        allow_private=False,
        resolver=resolving_to("8.8.8.8", "10.0.0.7"),
    )
    assert reason is not None and "10.0.0.7" in reason


def test_public_addresses_pass() -> None:
    for answer in ("8.8.8.8", "2606:4700:4700::1111"):
        assert (
            check_endpoint(
                "https://hooks.example.com/x", allow_private=False, resolver=resolving_to(answer)
            )
            is None
        )


def test_documentation_addresses_are_not_public() -> None:
    # TEST-NET-3 is not routed on the internet; Python's ipaddress counts it as private.
    assert endpoints.address_problem(ipaddress.ip_address("203.0.113.5")) == "private"


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "hooks.example.com", "https://user:pw@example.com/", "http://x:port/"],
)
def test_urls_that_are_not_webhook_urls_are_refused(url: str) -> None:
    assert check_endpoint(url, allow_private=True, resolver=resolving_to("8.8.8.8")) is not None


def test_a_name_that_does_not_resolve_is_refused_at_sign_up() -> None:
    def failing(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    reason = check_endpoint("https://nowhere.example/x", allow_private=False, resolver=failing)
    assert reason is not None and "no address" in reason


class Flipping:
    """A resolver whose answer changes after the first lookup (DNS rebinding)."""

    def __init__(self, first: str, then: str) -> None:
        self.answers = [first, then]
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return [self.answers[min(self.calls, 2) - 1]]


def test_the_checked_address_is_the_one_connected_to() -> None:
    """Check with a public answer, then the name turns to 127.0.0.1: the target keeps the
    public address and no second lookup happens. (Nothing connects here.)"""
    flipping = Flipping("8.8.8.8", "127.0.0.1")
    target = http.resolve("https://hooks.example.com/x", allow_private=False, resolver=flipping)
    assert target.address == "8.8.8.8" and target.host == "hooks.example.com"
    assert flipping.calls == 1
    assert flipping("hooks.example.com", 443) == ["127.0.0.1"], "the name did change"


@pytest.mark.db
def test_a_rebinding_name_is_posted_to_the_address_it_was_checked_at(runtime: Runtime) -> None:
    """Through a real POST: the name first resolves to 127.0.0.1 (where the receiver is),
    then to 127.0.0.2 (another receiver, same port); only the first gets the webhook, once,
    and its Host header is the URL's name."""
    checked = Receiver()
    rebound = Receiver(host="127.0.0.2", port=checked.port)
    try:
        incident_id = open_incident(runtime)
        url = f"http://hooks.example.com:{checked.port}/hook"
        sub = webhook_subscriber(runtime, url)
        enqueue_incident(runtime, sub, incident_id)
        flipping = Flipping("127.0.0.1", "127.0.0.2")
        deliverer = OutboxDeliverer(
            runtime.factory, sender(runtime, resolver=flipping), clock=runtime.clock
        )
        assert deliverer.deliver_pending() == 1
        assert len(checked.got) == 1 and rebound.got == []
        assert checked.got[0][1]["Host"] == f"hooks.example.com:{checked.port}"
        assert flipping.calls == 1
    finally:
        checked.close()
        rebound.close()


# --- settings and the sender protocol -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("1", True), ("yes", True), ("0", False), ("off", False)]
)
def test_allow_private_setting(text: str, value: bool) -> None:
    env = {"STATUSBOT_WEBHOOK_ALLOW_PRIVATE": text}
    assert Settings.from_env(env).webhook_allow_private is value
    assert Settings.from_env({}).webhook_allow_private is False


def test_allow_private_setting_refuses_nonsense() -> None:
    with pytest.raises(SettingsError, match="STATUSBOT_WEBHOOK_ALLOW_PRIVATE='maybe'"):
        Settings.from_env({"STATUSBOT_WEBHOOK_ALLOW_PRIVATE": "maybe"})


def test_outcomes_of_answers() -> None:
    from bot.notify.webhook import _outcome

    url = "https://h.example/x"
    assert isinstance(_outcome(url, http.Answer(204, b"", None)), Delivered)
    for status in (301, 404, 410, 500):
        assert isinstance(_outcome(url, http.Answer(status, b"", "/x")), Retry)
    assert not isinstance(_outcome(url, http.Answer(500, b"", None)), GiveUp)


def test_a_job_for_an_unknown_subscriber_is_skipped_without_quarantine(runtime: Runtime) -> None:
    s = sender(runtime)
    job = Job(
        id=1,
        kind="webhook",
        channel="nobody",
        event="incident.updated",
        incident_id=None,
        update_id=None,
        payload={},
        attempts=0,
        created_at=runtime.clock() - timedelta(minutes=1),
    )
    (outcome,) = s.send([job])
    assert isinstance(outcome, GiveUp) and "no longer subscribed" in outcome.error


def self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A certificate for `name` (and its key), made with the openssl command."""
    import subprocess

    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.db
def test_https_goes_to_the_checked_address_and_verifies_the_name(
    runtime: Runtime, tmp_path: Path
) -> None:
    """TLS speaks to and checks the URL's name while the socket goes to the checked
    address; a certificate for another name is refused (and retried)."""
    import ssl

    cert, key = self_signed(tmp_path, "hooks.example.test")
    receiver = Receiver()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    try:
        incident_id = open_incident(runtime)
        good = webhook_subscriber(runtime, f"https://hooks.example.test:{receiver.port}/hook")
        enqueue_incident(runtime, good, incident_id)
        to_loopback = resolving_to("127.0.0.1")
        deliverer = OutboxDeliverer(
            runtime.factory,
            sender(runtime, resolver=to_loopback, ca_certs=str(cert)),
            clock=runtime.clock,
        )
        assert deliverer.deliver_pending() == 1
        assert receiver.got[0][1]["Host"] == f"hooks.example.test:{receiver.port}"
        wrong = webhook_subscriber(runtime, f"https://other.example.test:{receiver.port}/hook")
        (entry_id,) = enqueue_incident(runtime, wrong, incident_id)
        assert deliverer.deliver_pending() == 0
        assert len(receiver.got) == 1
        assert "doesn't match" in (entry(runtime.factory, entry_id).last_error or "")
    finally:
        receiver.close()


def test_sign_up_refuses_a_webhook_to_a_private_address(runtime: Runtime) -> None:
    """The deliverer's own address check runs when an editor adds the webhook, too."""
    for url in ("http://127.0.0.1:9/hook", "http://localhost/hook", "http://169.254.169.254/"):
        result = runtime.run_line(
            f"/subscribers add-webhook {url} --email ops@example.com", user="U0IC"
        )
        assert not result.ok
        assert "can't send webhooks there" in result.reply
    with runtime.factory() as session:
        assert session.scalars(select(Subscriber)).all() == []
