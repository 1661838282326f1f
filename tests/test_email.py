"""Subscriber mail through a real SMTP server (aiosmtpd): what arrives, over which
connection, and what happens on refusals, retries and restarts.

Every test with a database runs on SQLite, and on PostgreSQL too when
TEST_DATABASE_URL is set. Time is the fixture's fake clock.
"""

from __future__ import annotations

import io
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

import bot.notify
from bot.notify.email import (
    CONNECTIONS,
    PER_CONNECTION,
    EmailSender,
    SmtpMailer,
    email_sender,
    mail_page,
)
from bot.notify.worker import OutboxDeliverer
from bot.runtime import Runtime
from bot.settings import Settings, SettingsError, smtp_target
from renderers.email import Outgoing
from storage import outbox
from storage import subscribers as store
from storage.models import OutboxEntry, Subscriber
from tests.conftest import FakeClock
from tests.smtp_sink import HOST, Certs, Sink, make_certs, running

PAGE = "https://status.example.com"
FROM = "Example Status <status@example.com>"


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def port(sink: Sink) -> Iterator[int]:
    with running(sink) as p:
        yield p


def smtp_runtime(runtime: Runtime, url: str) -> Runtime:
    runtime.settings = replace(runtime.settings, smtp_url=url, mail_from=FROM)
    return runtime


def subscribe(rt: Runtime, address: str, *, confirmed: bool = True) -> Subscriber:
    with rt.factory.begin() as session:
        sub = store.add(
            session,
            kind=store.EMAIL,
            email=address,
            source="cli",
            now=rt.clock(),
            confirmed=confirmed,
        )
        session.expunge(sub)
    return sub


def run(rt: Runtime, *lines: str) -> None:
    for line in lines:
        result = rt.run_line(line, user="U1")
        assert result.ok, result.reply


def fan_out(rt: Runtime, *codes: str) -> int:
    """What the fan-out does: an EMAIL entry per subscriber for every Slack entry not yet
    copied (same event, incident and update); how many."""
    with rt.factory.begin() as session:
        done = set(
            session.scalars(
                select(OutboxEntry.update_id).where(
                    OutboxEntry.kind == outbox.Kind.EMAIL, OutboxEntry.update_id.is_not(None)
                )
            )
        )
        slack = session.scalars(
            select(OutboxEntry)
            .where(OutboxEntry.kind == outbox.Kind.SLACK)
            .order_by(OutboxEntry.id)
        ).all()
        made = 0
        for entry in slack:
            if entry.update_id in done:
                continue
            outbox.enqueue(
                session,
                channels=codes,
                event=entry.event,
                at=rt.clock(),
                incident_id=entry.incident_id,
                update_id=entry.update_id,
                payload={"number": 1},
                kind=outbox.Kind.EMAIL,
            )
            made += len(codes)
    return made


def enqueue(rt: Runtime, code: str, event: str, payload: dict[str, str] | None = None) -> None:
    with rt.factory.begin() as session:
        outbox.enqueue(
            session,
            channels=[code],
            event=event,
            at=rt.clock(),
            payload=payload,
            kind=outbox.Kind.EMAIL,
        )


def deliverer(rt: Runtime, clock: FakeClock, **kw: object) -> OutboxDeliverer:
    return OutboxDeliverer(rt.factory, email_sender(rt, **kw), clock=clock)  # type: ignore[arg-type]


def drain(d: OutboxDeliverer) -> int:
    total = 0
    while n := d.deliver_pending():
        total += n
    return total


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def html_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("html",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def pending(rt: Runtime) -> list[OutboxEntry]:
    with rt.factory() as session:
        return outbox.pending(session, kind=outbox.Kind.EMAIL)


# -- what arrives ----------------------------------------------------------------------


def test_an_incident_arrives_as_three_threaded_mails_with_every_header(
    runtime: Runtime, clock: FakeClock, sink: Sink, port: int
) -> None:
    rt = smtp_runtime(runtime, f"smtp://{HOST}:{port}")
    sub = subscribe(rt, "ann@example.org")
    run(rt, "/component add API")
    run(
        rt,
        "/incident open Delays in segment calculation --components API=partial "
        "-- We **see** delays.",
    )
    assert fan_out(rt, sub.code) == 1
    assert drain(deliverer(rt, clock)) == 1  # mails show the incident as it is when sent
    run(rt, "/incident update 1 --status identified -- Found it.")
    run(rt, "/incident resolve 1 -- All good.")
    assert fan_out(rt, sub.code) == 2
    assert drain(deliverer(rt, clock)) == 2
    opened, updated, resolved = sink.to("ann@example.org")
    assert resolved["Subject"] == "[Example] Delays in segment calculation - Resolved"
    assert opened["Subject"] == "[Example] Delays in segment calculation - Investigating"
    root = f"<incident-1.{sub.code}@status.example.com>"
    assert opened["Message-ID"] == root and opened["In-Reply-To"] is None
    for later in (updated, resolved):
        assert later["In-Reply-To"] == root and later["References"] == root
        assert later["Message-ID"] != root
    assert len({m["Message-ID"] for m in (opened, updated, resolved)}) == 3
    unsubscribe = f"{PAGE}/unsubscribe/{sub.token}"
    manage = f"{PAGE}/subscription/{sub.token}"
    for mail in (opened, updated, resolved):
        assert mail.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
        assert mail["From"] == FROM and mail["To"] == "ann@example.org"
        assert mail["List-Unsubscribe"] == f"<{unsubscribe}>"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert mail["List-Id"] == "Example <statusbot.status.example.com>"
        assert mail["Auto-Submitted"] == "auto-generated"
        assert mail["Date"].datetime == clock.now.replace(microsecond=0)
        for part in (text_of(mail), html_of(mail)):
            assert unsubscribe in part and manage in part
            assert f"{PAGE}/incidents/1.html" in part
    assert "<strong>see</strong>" in html_of(opened) and "We **see** delays." in text_of(opened)
    assert "API (Partial Outage)" in text_of(opened) and "API (Partial Outage)" in html_of(opened)
    assert "All good." in text_of(resolved) and "Resolved" in text_of(resolved)
    assert pending(rt) == []


def test_the_confirmation_is_the_only_mail_an_unconfirmed_subscriber_gets(
    runtime: Runtime, clock: FakeClock, sink: Sink, port: int
) -> None:
    rt = smtp_runtime(runtime, f"smtp://{HOST}:{port}")
    sub = subscribe(rt, "new@example.org", confirmed=False)
    run(rt, "/incident open Outage -- Down.")
    fan_out(rt, sub.code)
    enqueue(rt, sub.code, "subscriber.confirm")
    drain(deliverer(rt, clock))
    (mail,) = sink.to("new@example.org")
    assert mail["Subject"] == "[Example] Confirm your subscription"
    link = f"{PAGE}/subscribe/confirm/{sub.token}"
    assert link in text_of(mail) and f'href="{link}"' in html_of(mail)
    assert "expires in 7 days" in text_of(mail) and "nothing more will be sent" in text_of(mail)
    assert pending(rt) == [], "the incident mail was skipped, not left waiting"


def test_a_quarantined_webhook_owner_is_told(
    runtime: Runtime, clock: FakeClock, sink: Sink, port: int
) -> None:
    rt = smtp_runtime(runtime, f"smtp://{HOST}:{port}")
    with rt.factory.begin() as session:
        hook = store.add(
            session,
            kind=store.WEBHOOK,
            email="ops@example.org",
            endpoint="https://hooks.example.org/x",
            source="cli",
            now=clock.now,
            confirmed=True,
        )
        hook.quarantined_at = clock.now
        code = hook.code
    enqueue(
        rt,
        code,
        "subscriber.quarantined",
        {"endpoint": "https://hooks.example.org/x", "error": "HTTP 500 <b>"},
    )
    drain(deliverer(rt, clock))
    (mail,) = sink.to("ops@example.org")
    assert mail["Subject"] == "[Example] Webhook deliveries stopped"
    assert "https://hooks.example.org/x" in text_of(mail)
    assert "HTTP 500 &lt;b&gt;" in html_of(mail) and "<b>" not in html_of(mail)


def test_unsubscribed_bouncing_and_deleted_subscribers_get_nothing(
    runtime: Runtime, clock: FakeClock, sink: Sink, port: int
) -> None:
    rt = smtp_runtime(runtime, f"smtp://{HOST}:{port}")
    gone, bouncing = subscribe(rt, "gone@example.org"), subscribe(rt, "bounce@example.org")
    with rt.factory.begin() as session:
        for s in session.scalars(select(Subscriber)):
            if s.code == gone.code:
                store.unsubscribe(s, now=clock.now)
            else:
                s.bounced_at = clock.now
    run(rt, "/incident open Outage -- Down.")
    fan_out(rt, gone.code, bouncing.code, "NOSUCHCODE")
    drain(deliverer(rt, clock))
    assert sink.mails == [] and sink.connections == 0
    assert pending(rt) == []


# -- connections, TLS, AUTH ------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(Path(tmp_path_factory.mktemp("certs")))


def _one_mail(rt: Runtime, clock: FakeClock, sink: Sink, certs: Certs) -> None:
    sub = subscribe(rt, "tls@example.org", confirmed=False)
    enqueue(rt, sub.code, "subscriber.confirm")
    drain(deliverer(rt, clock, context=certs.client()))


def test_starttls_and_auth_with_a_verified_certificate(
    runtime: Runtime, clock: FakeClock, sink: Sink, certs: Certs
) -> None:
    with running(sink, starttls=certs, auth=True) as p:
        # The password has an @ and a : percent-encoded, as the URL must carry them.
        rt = smtp_runtime(runtime, f"smtp://mailer:p%40ss%3Aword@{HOST}:{p}")
        _one_mail(rt, clock, sink, certs)
    assert len(sink.to("tls@example.org")) == 1
    assert sink.logins == [("mailer", "p@ss:word")]


def test_smtps_and_auth(runtime: Runtime, clock: FakeClock, sink: Sink, certs: Certs) -> None:
    # aiosmtpd offers AUTH under implicit TLS only without auth_require_tls (it knows
    # only STARTTLS as "TLS"); the connection is TLS from its first byte anyway.
    with running(sink, implicit_tls=certs, auth=True, auth_require_tls=False) as p:
        rt = smtp_runtime(runtime, f"smtps://mailer:p%40ss%3Aword@{HOST}:{p}")
        _one_mail(rt, clock, sink, certs)
    assert len(sink.to("tls@example.org")) == 1 and sink.logins


def test_a_certificate_not_trusted_is_refused_and_the_mail_waits(
    runtime: Runtime, clock: FakeClock, sink: Sink, certs: Certs
) -> None:
    with running(sink, starttls=certs, auth=True) as p:
        rt = smtp_runtime(runtime, f"smtp://mailer:p%40ss%3Aword@{HOST}:{p}")
        sub = subscribe(rt, "tls@example.org", confirmed=False)
        enqueue(rt, sub.code, "subscriber.confirm")
        assert drain(deliverer(rt, clock)) == 0  # the system CAs don't know the test CA
    assert sink.mails == [] and sink.logins == []
    (entry,) = pending(rt)
    assert entry.attempts == 1 and "CERTIFICATE_VERIFY_FAILED" in (entry.last_error or "")


def test_no_password_in_the_clear_when_the_server_has_no_starttls(
    runtime: Runtime, clock: FakeClock, sink: Sink, port: int
) -> None:
    rt = smtp_runtime(runtime, f"smtp://mailer:secret@{HOST}:{port}")
    sub = subscribe(rt, "plain@example.org", confirmed=False)
    enqueue(rt, sub.code, "subscriber.confirm")
    assert drain(deliverer(rt, clock)) == 0
    (entry,) = pending(rt)
    assert "in the clear" in (entry.last_error or "") and sink.mails == []


def test_a_batch_of_fifty_goes_over_one_connection(
    runtime: Runtime, clock: FakeClock, sink: Sink, port: int
) -> None:
    rt = smtp_runtime(runtime, f"smtp://{HOST}:{port}")
    codes = [subscribe(rt, f"u{n}@example.org").code for n in range(50)]
    run(rt, "/incident open Outage -- Down.")
    fan_out(rt, *codes)
    started = time.perf_counter()
    assert deliverer(rt, clock).deliver_pending(limit=50) == 50
    took = time.perf_counter() - started
    assert sink.connections == 1 and len(sink.mails) == 50
    logging.getLogger(__name__).warning("50 mails over one connection in %.2f s", took)


def test_a_large_batch_is_spread_over_several_sessions_each_mail_once(
    runtime: Runtime, clock: FakeClock, sink: Sink, port: int
) -> None:
    rt = smtp_runtime(runtime, f"smtp://{HOST}:{port}")
    n = CONNECTIONS * PER_CONNECTION
    codes = [subscribe(rt, f"m{k}@example.org").code for k in range(n)]
    run(rt, "/incident open Outage -- Down.")
    fan_out(rt, *codes)
    assert deliverer(rt, clock).deliver_pending(limit=n) == n
    assert sink.connections == CONNECTIONS
    assert sorted(r for rcpt, _ in sink.mails for r in rcpt) == sorted(
        f"m{k}@example.org" for k in range(n)
    ), "each address once"
    ids = [str(mail["Message-ID"]) for _, mail in sink.mails]
    assert len(set(ids)) == n, "a Message-ID of its own each"
    assert pending(rt) == []


def test_a_dropped_connection_is_reopened_once(
    runtime: Runtime, clock: FakeClock, sink: Sink, port: int
) -> None:
    rt = smtp_runtime(runtime, f"smtp://{HOST}:{port}")
    a = subscribe(rt, "a@example.org", confirmed=False)
    b = subscribe(rt, "b@example.org", confirmed=False)
    mailer = SmtpMailer(smtp_target(f"smtp://{HOST}:{port}"))

    class Dropping:
        sent = 0

        def send(self, message: Outgoing) -> None:
            mailer.send(message)
            self.sent += 1
            if self.sent == 1 and mailer._smtp is not None:
                # The server hangs up (an idle timeout, a restart).
                mailer._smtp.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]

        def close(self) -> None:
            mailer.close()

    sender = EmailSender(rt.factory, mail_page(rt.settings), Dropping, clock=clock)
    enqueue(rt, a.code, "subscriber.confirm")
    enqueue(rt, b.code, "subscriber.confirm")
    assert OutboxDeliverer(rt.factory, sender, clock=clock).deliver_pending() == 2
    assert sink.connections == 2 and len(sink.mails) == 2


# -- refusals, retries, restarts -------------------------------------------------------


def test_a_4xx_is_retried_later_and_delivered_once(
    runtime: Runtime, clock: FakeClock, sink: Sink, port: int
) -> None:
    rt = smtp_runtime(runtime, f"smtp://{HOST}:{port}")
    sub = subscribe(rt, "busy@example.org", confirmed=False)
    sink.answers["busy@example.org"] = ["451 4.7.1 Greylisted busy@example.org, try later"]
    enqueue(rt, sub.code, "subscriber.confirm")
    d = deliverer(rt, clock)
    assert d.deliver_pending() == 0
    (entry,) = pending(rt)
    assert entry.attempts == 1 and entry.last_error is not None
    assert entry.last_error.startswith("451") and "busy@example.org" not in entry.last_error
    assert d.deliver_pending() == 0, "it waits for its retry"
    clock.advance(seconds=10)
    assert d.deliver_pending() == 1
    assert drain(d) == 0
    assert len(sink.to("busy@example.org")) == 1


def test_a_5xx_marks_the_address_bouncing_and_nothing_more_goes_to_it(
    runtime: Runtime, clock: FakeClock, sink: Sink, port: int
) -> None:
    rt = smtp_runtime(runtime, f"smtp://{HOST}:{port}")
    bad, good = subscribe(rt, "nobody@example.org"), subscribe(rt, "ok@example.org")
    sink.answers["nobody@example.org"] = ["550 5.1.1 No such user nobody@example.org"]
    run(rt, "/incident open Outage -- Down.")
    fan_out(rt, bad.code, good.code)
    run(rt, "/incident resolve 1 -- Up.")
    fan_out(rt, bad.code, good.code)
    drain(deliverer(rt, clock))
    assert sink.to("nobody@example.org") == [] and len(sink.to("ok@example.org")) == 2
    with rt.factory() as session:
        found = store.by_code(session, bad.code)
        assert found is not None and found.bounced_at == clock.now
        assert found.last_error is not None and found.last_error.startswith("550")
        assert "nobody@example.org" not in found.last_error
        failed = session.scalars(select(OutboxEntry).where(OutboxEntry.failed_at.is_not(None)))
        assert [e.channel for e in failed] == [bad.code], "the second was skipped, not failed"
    assert pending(rt) == []


class Dies(Exception):
    pass


def test_a_deliverer_dying_mid_batch_loses_nothing_and_resends_nothing_sent(
    runtime: Runtime, clock: FakeClock, sink: Sink, port: int
) -> None:
    rt = smtp_runtime(runtime, f"smtp://{HOST}:{port}")
    codes = [subscribe(rt, f"r{n}@example.org").code for n in range(10)]
    run(rt, "/incident open Outage -- Down.")
    fan_out(rt, *codes)
    mailer = SmtpMailer(smtp_target(f"smtp://{HOST}:{port}"))

    class DiesAfterFour:
        sent = 0

        def send(self, message: Outgoing) -> None:
            if self.sent == 4:
                raise SystemExit("killed")  # not an Exception: nothing records the batch
            mailer.send(message)
            self.sent += 1

        def close(self) -> None:
            mailer.close()

    sender = EmailSender(rt.factory, mail_page(rt.settings), DiesAfterFour, clock=clock)
    with pytest.raises(SystemExit):
        OutboxDeliverer(rt.factory, sender, clock=clock).deliver_pending()
    assert len(sink.mails) == 4
    assert drain(deliverer(rt, clock)) == 0, "the dead one's lease still holds the rest"
    clock.advance(minutes=3)
    assert drain(deliverer(rt, clock)) == 6
    assert sorted(r for rcpt, _ in sink.mails for r in rcpt) == sorted(
        f"r{n}@example.org" for n in range(10)
    ), "each once"
    assert pending(rt) == []


# -- email off, and serve --------------------------------------------------------------


def test_without_smtp_what_would_be_sent_is_printed(runtime: Runtime, clock: FakeClock) -> None:
    sub = subscribe(runtime, "print@example.org")
    run(runtime, "/incident open Outage -- Down hard.")
    fan_out(runtime, sub.code)
    out = io.StringIO()
    assert drain(deliverer(runtime, clock, stream=out)) == 1
    printed = out.getvalue()
    assert "To: print@example.org" in printed
    assert "Subject: [Example] Outage - Investigating" in printed
    assert "Down hard." in printed and "<p>" not in printed


def test_serve_says_once_that_email_is_off(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.notify"):
        kinds = [sender.kind for sender in bot.notify.senders(runtime)]
    assert kinds == ["webhook"], "no email sender without SMTP"
    assert [r.getMessage() for r in caplog.records] == [
        "Email is off: set STATUSBOT_SMTP_URL to mail subscribers"
    ]


def test_serve_starts_the_email_worker_and_it_delivers(
    runtime: Runtime, sink: Sink, port: int, clock: FakeClock
) -> None:
    rt = smtp_runtime(runtime, f"smtp://{HOST}:{port}")
    sub = subscribe(rt, "serve@example.org", confirmed=False)
    enqueue(rt, sub.code, "subscriber.confirm")
    stoppers = bot.notify.start(rt, bot.notify.senders(rt))
    try:
        deadline = time.monotonic() + 10
        while not sink.mails and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for stop in stoppers:
            stop()
    assert len(sink.to("serve@example.org")) == 1


def test_addresses_never_reach_the_info_log(
    runtime: Runtime, clock: FakeClock, sink: Sink, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    rt = smtp_runtime(runtime, f"smtp://{HOST}:{port}")
    sub = subscribe(rt, "secret-person@example.org", confirmed=False)
    sink.answers["secret-person@example.org"] = ["451 secret-person@example.org busy"]
    enqueue(rt, sub.code, "subscriber.confirm")
    with caplog.at_level(logging.DEBUG):
        d = deliverer(rt, clock)
        d.deliver_pending()
        clock.advance(seconds=10)
        d.deliver_pending()
    assert len(sink.mails) == 1
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("bot.")]
    assert all("secret-person" not in m for m in ours), "aiosmtpd's own log is the server's"
    assert any(sub.code in m for m in ours)


# -- settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "user", "password"),
    [
        ("smtp://mail.example.com", "mail.example.com", 587, False, None, None),
        ("smtps://u:p%2Fw@mail.example.com", "mail.example.com", 465, True, "u", "p/w"),
        ("smtp://a%40b.c:x@mail.example.com:2525", "mail.example.com", 2525, False, "a@b.c", "x"),
    ],
)
def test_smtp_urls(
    url: str, host: str, port: int, tls: bool, user: str | None, password: str | None
) -> None:
    target = smtp_target(url)
    assert (target.host, target.port, target.implicit_tls) == (host, port, tls)
    assert (target.user, target.password) == (user, password)
    assert Settings.from_env({"STATUSBOT_SMTP_URL": url}).smtp_url == url


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://mail.example.com", "must start with smtp:// or smtps://"),
        ("smtp://", "names no mail server"),
        ("smtp://mail.example.com:99999", "is not a URL"),
        ("smtp://mail.example.com/inbox", "has a path"),
        ("smtp://:hunter2@mail.example.com", "no user name"),
    ],
)
def test_bad_smtp_urls_are_refused_without_showing_the_password(url: str, says: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"STATUSBOT_SMTP_URL": url})
    assert says in str(error.value) and "STATUSBOT_SMTP_URL" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_mail_from_is_one_address_and_defaults_to_the_page_host() -> None:
    env = {"STATUSBOT_PAGE_URL": "https://status.vero.com"}
    assert Settings.from_env(env).mail_sender == "statusbot@status.vero.com"
    named = {**env, "STATUSBOT_MAIL_FROM": "Vero Status <status@vero.com>"}
    assert Settings.from_env(named).mail_sender == "Vero Status <status@vero.com>"
    for bad in ("not an address", "a@b.com, c@d.com", "x@y.com\r\nBcc: z@w.com"):
        with pytest.raises(SettingsError, match="STATUSBOT_MAIL_FROM"):
            Settings.from_env({"STATUSBOT_MAIL_FROM": bad})
