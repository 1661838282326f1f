"""Mail to subscribers (SPEC §9): the EMAIL outbox lines, sent over SMTP or printed.

`EmailSender` is the `Sender` of bot.notify.worker.OutboxDeliverer for kind
"email". It reads what it renders from the database at send time (the incident
as it is now), skips subscribers that are gone, unsubscribed or bouncing (an
unconfirmed one gets only its confirmation), and hands the mails of one batch
to one `Mailer`:

- `SmtpMailer`: one SMTP session (STARTTLS when the server offers it, or TLS
  from the start for smtps://; certificates always verified), reused for every
  mail it is given, reconnecting once if the server drops it. A large batch is
  split over up to CONNECTIONS sessions at once, each in its own thread (SMTP
  is waiting, not computing), each with at least PER_CONNECTION mails.
- `PrintingMailer`: email is off (no STATUSBOT_SMTP_URL); what would be sent is
  written to a stream, for `statusbot shell` and `run`.

Sent mails are recorded in groups (every 25 mails or half a second, by a thread
of their own while the sessions go on; the batch's record follows), so a process
dying mid-batch can send again at most the mails of its last group or two, each
with the same Message-ID, so receivers can deduplicate.
A batch's subscribers are read in one query, and each notification is built
and serialised by the email package once (renderers.email.Prototype); each
subscriber's mail is those bytes with its address, links and Message-ID put in.

Outcomes: accepted → Delivered; 4xx and connection failures → Retry (the worker
backs off and gives up after a day); a 5xx refusing the recipient → GiveUp, and
the subscriber is marked bouncing so nothing more is queued for it. Addresses
are never logged (nor put in an outbox error); the subscriber's code stands in.
"""

from __future__ import annotations

import functools
import logging
import math
import smtplib
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Protocol, TextIO

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.notify.worker import Delivered, GiveUp, Job, Outcome, Retry
from bot.runtime import Runtime, system_clock
from bot.settings import Settings, SmtpTarget, smtp_target
from renderers import email as render
from storage import incidents as incident_store
from storage import outbox
from storage.db import transaction
from storage.models import Incident, OutboxEntry, Subscriber
from storage.snapshot import IncidentView, incident_view

log = logging.getLogger(__name__)

CONFIRM_EVENT = "subscriber.confirm"
QUARANTINED_EVENT = "subscriber.quarantined"
SMTP_TIMEOUT = 30.0  # seconds for each SMTP round trip
# Sent mails are recorded in groups (one commit each, not one per mail): a crash can
# send again at most a group, each with its Message-ID so receivers can deduplicate.
MARK_EVERY = 25
MARK_SECONDS = 0.5
# SMTP sessions a batch is spread over at most, and the fewest mails worth opening one
# for (a session costs a connect, EHLO, perhaps STARTTLS and AUTH).
CONNECTIONS = 4
PER_CONNECTION = 50


class Mailer(Protocol):
    """Sends finished messages; one per batch, closed after it."""

    def send(self, mail: render.Outgoing) -> None:
        """Send one mail; raises smtplib's exceptions (or OSError) when it is not taken."""
        ...

    def close(self) -> None:
        """Let go of the connection, if any."""
        ...


class SmtpMailer:
    """One SMTP session, opened at the first message and reused for the rest."""

    def __init__(
        self,
        target: SmtpTarget,
        *,
        context: ssl.SSLContext | None = None,
        timeout: float = SMTP_TIMEOUT,
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        self.target = target
        # Certificates are always checked; tests pass a context trusting their own CA.
        self.context = context or _default_context()
        self.timeout = timeout
        self.on_connect = on_connect
        self._smtp: smtplib.SMTP | None = None

    def send(self, mail: render.Outgoing) -> None:
        """Send, reconnecting once if the connection was dropped (idle timeout, restart)."""
        try:
            _transmit(self._session(), mail)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            self.close()
            _transmit(self._session(), mail)

    def close(self) -> None:
        """QUIT politely; a connection already gone is simply forgotten."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def _session(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        t = self.target
        smtp: smtplib.SMTP
        if t.implicit_tls:
            smtp = smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout, context=self.context)
        else:
            smtp = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            secure = t.implicit_tls
            if not secure and smtp.has_extn("starttls"):
                smtp.starttls(context=self.context)
                smtp.ehlo()
                secure = True
            if t.user is not None:
                if not secure:
                    raise smtplib.SMTPNotSupportedError(
                        "the mail server offers no STARTTLS; statusbot won't send the "
                        "password in the clear (use smtps:// or a server with STARTTLS)"
                    )
                smtp.login(t.user, t.password or "")
        except BaseException:
            smtp.close()
            raise
        if self.on_connect is not None:
            self.on_connect()
        self._smtp = smtp
        return smtp


def _transmit(smtp: smtplib.SMTP, mail: render.Outgoing) -> None:
    """MAIL, RCPT and DATA for one finished mail (what smtplib.send_message does after
    serialising: SMTPUTF8 asked for when an address needs it, refused if not offered)."""
    options: tuple[str, ...] = ()
    if mail.international:
        smtp.ehlo_or_helo_if_needed()
        if not smtp.has_extn("smtputf8"):
            raise smtplib.SMTPNotSupportedError(
                "an address needs SMTPUTF8, which the mail server does not offer"
            )
        options = ("SMTPUTF8", "BODY=8BITMIME")
    smtp.sendmail(mail.sender, [mail.recipient], mail.data, mail_options=options)


@functools.cache
def _default_context() -> ssl.SSLContext:
    """The system's trust store, loaded once: loading it takes milliseconds a batch."""
    return ssl.create_default_context()


class PrintingMailer:
    """Email is off: each message's To, Subject and text part are written to a stream."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def send(self, mail: render.Outgoing) -> None:
        """Write what would be sent."""
        message = message_from_bytes(mail.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        part = message.get_body(preferencelist=("plain",))
        text = part.get_content() if isinstance(part, EmailMessage) else ""
        self.stream.write(
            f"--- email (off: STATUSBOT_SMTP_URL is not set)\n"
            f"To: {message['To']}\nSubject: {message['Subject']}\n\n{text.rstrip()}\n---\n"
        )
        self.stream.flush()

    def close(self) -> None:
        """Nothing to let go of."""


@dataclass(frozen=True, slots=True)
class _Refused:
    """The server refused the address itself (5xx): the subscriber bounces."""

    error: str


class EmailSender:
    """The `Sender` of EMAIL outbox entries (bot.notify.worker)."""

    kind = outbox.Kind.EMAIL
    # A pass takes 500 mails over up to CONNECTIONS sessions (a few seconds, well inside
    # the 2-minute lease; fewer passes, so less of a pass's fixed work: finding the heads,
    # loading the subscribers, opening the SMTP sessions), and rests a quarter as long
    # as it worked: the acks keep most of a core while a large fan-out drains.
    batch = 500
    rest_ratio = 0.25

    def __init__(
        self,
        factory: sessionmaker[Session],
        page: render.MailPage,
        mailer: Callable[[], Mailer],
        *,
        clock: Callable[[], datetime] = system_clock,
        connections: int = CONNECTIONS,
    ) -> None:
        self.factory = factory
        self.page = page
        self.mailer = mailer
        self.clock = clock
        self.connections = connections

    def send(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
        """Render every job, then send the mails over one SMTP session, or for a large
        batch over several at once (CONNECTIONS, each given PER_CONNECTION mails or more)."""
        with self.factory() as session:
            batch = _Batch(session, {job.channel for job in jobs})
            prepared = [self._prepare(batch, job) for job in jobs]
        outcomes: list[Outcome | None] = [
            None if isinstance(item, render.Outgoing) else item for item in prepared
        ]
        todo = [n for n, item in enumerate(prepared) if isinstance(item, render.Outgoing)]
        sessions = max(1, min(self.connections, math.ceil(len(todo) / PER_CONNECTION)))
        groups = [todo[k::sessions] for k in range(sessions)]
        marks = _Marks(self)
        refused: dict[str, str] = {}

        def send_group(group: list[int]) -> None:
            mailer: Mailer | None = None
            broken: str | None = None  # this session failed twice: the rest of it waits
            try:
                for n in group:
                    job, mail = jobs[n], prepared[n]
                    assert isinstance(mail, render.Outgoing)
                    if broken is not None:
                        outcomes[n] = Retry(broken)
                        continue
                    if mailer is None:
                        mailer = self.mailer()
                    outcome = self._send_one(mailer, job, mail)
                    if isinstance(outcome, _Refused):
                        refused[job.channel] = outcome.error
                        outcome = GiveUp(outcome.error)
                    elif isinstance(outcome, Retry) and outcome.error.startswith(_CONNECTION):
                        broken = outcome.error
                    elif isinstance(outcome, Delivered):
                        marks.add(job)
                    outcomes[n] = outcome
            finally:
                if mailer is not None:
                    mailer.close()

        try:
            if sessions == 1:
                send_group(groups[0])
            else:
                with ThreadPoolExecutor(sessions, thread_name_prefix="smtp") as pool:
                    for done in [pool.submit(send_group, g) for g in groups]:
                        done.result()
        finally:
            marks.flush()
        if refused:
            self._mark_bouncing(refused)
        sent = sum(isinstance(o, Delivered) for o in outcomes)
        log.info("Mailed %d of %d over %d SMTP session(s)", sent, len(jobs), sessions)
        return [o if o is not None else Retry("not sent") for o in outcomes]

    def on_give_up(self, session: Session, job: Job, error: str) -> None:
        """Nothing more to do: a refused address was marked bouncing when it was refused."""
        log.info("Mail %s to subscriber %s given up", job.id, job.channel)

    # -- one job --------------------------------------------------------------------------
    def _prepare(self, batch: _Batch, job: Job) -> render.Outgoing | Outcome:
        """The mail to send, or the outcome without sending."""
        subscriber = batch.subscribers.get(job.channel)
        skip = _skip_reason(subscriber, job.event)
        if skip is not None or subscriber is None:
            log.debug(
                "Mail %s (%s) to subscriber %s skipped: %s", job.id, job.event, job.channel, skip
            )
            return Delivered()
        to = render.MailTo(address=subscriber.email, code=subscriber.code, token=subscriber.token)
        try:
            return self._render(batch, job, to)
        except ValueError as exc:  # an address the email package can't put in a header
            return GiveUp(f"mail {job.id} can't be written: {_scrub(str(exc), to)}")

    def _render(self, batch: _Batch, job: Job, to: render.MailTo) -> render.Outgoing | GiveUp:
        message: EmailMessage
        if job.event == CONFIRM_EVENT:
            message = render.confirmation(self.page, to, entry_id=job.id, now=self.clock())
        elif job.event == QUARANTINED_EVENT:
            message = render.quarantine_notice(
                self.page,
                to,
                endpoint=str(job.payload.get("endpoint", "")),
                error=str(job.payload.get("error", "")),
                entry_id=job.id,
                now=self.clock(),
            )
        else:
            prototype = batch.prototype(job, self.page, self.clock)
            if prototype is None:
                return GiveUp(f"{job.event}: the incident no longer exists")
            filled = prototype.fill(to, entry_id=job.id)
            if filled is not None:
                return filled
            # An address or token the fast path does not take: built in full, the same mail.
            message = prototype.build(to, entry_id=job.id)
        return render.outgoing(self.page, message, to.address)

    def _send_one(self, mailer: Mailer, job: Job, mail: render.Outgoing) -> Outcome | _Refused:
        to = render.MailTo(address=mail.recipient, code=job.channel, token="")
        try:
            mailer.send(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (0, b""))
            error = _scrub(f"{code} {_decode(text)}", to)
            if 500 <= code < 600:
                log.warning("Subscriber %s refused by the mail server: %s", job.channel, error)
                return _Refused(error)
            return Retry(error)
        except (
            smtplib.SMTPConnectError,
            smtplib.SMTPHeloError,
            smtplib.SMTPAuthenticationError,
        ) as exc:
            # The session could not be set up (these carry a code too, but say nothing
            # about the mail): our settings or the server, so every mail waits.
            log.warning("Mail server refused the session: %s", exc)
            return Retry(f"{_CONNECTION}{type(exc).__name__}: {_scrub(str(exc), to)}")
        except smtplib.SMTPResponseException as exc:
            # Our sender refused, or the message after DATA: not the address's fault,
            # so a 5xx is given up on for this mail only and nobody is marked bouncing.
            error = _scrub(f"{exc.smtp_code} {_decode(exc.smtp_error)}", to)
            if 500 <= exc.smtp_code < 600 and not isinstance(exc, smtplib.SMTPSenderRefused):
                return GiveUp(error)
            return Retry(error)
        except (smtplib.SMTPException, OSError) as exc:
            log.warning("Mail server unreachable: %s: %s", type(exc).__name__, exc)
            return Retry(f"{_CONNECTION}{type(exc).__name__}: {_scrub(str(exc), to)}")
        log.debug("Mailed %s (%s) to subscriber %s", job.id, job.event, job.channel)
        return Delivered()

    def _mark_sent(self, ids: Sequence[int]) -> None:
        """Record sent mails before the batch's record: if this process dies mid-batch,
        only the mails since the last group was recorded can be sent again."""
        try:
            with transaction(self.factory) as session:
                session.execute(
                    update(OutboxEntry)
                    .where(
                        OutboxEntry.id.in_(ids),
                        OutboxEntry.delivered_at.is_(None),
                        OutboxEntry.claimed_by.is_not(None),
                    )
                    .values(delivered_at=self.clock())
                    .execution_options(synchronize_session=False)
                )
        except SQLAlchemyError:
            # The batch's record still says so when the database is back.
            log.exception("Mails %s were sent but could not be recorded yet", list(ids))

    def _mark_bouncing(self, refused: dict[str, str]) -> None:
        now = self.clock()
        with transaction(self.factory) as session:
            for code, error in refused.items():
                session.execute(
                    update(Subscriber)
                    .where(Subscriber.code == code, Subscriber.bounced_at.is_(None))
                    .values(bounced_at=now, last_error=error[:2000])
                )


class _Batch:
    """What a batch's mails are rendered from, each loaded once: its subscribers (one
    query), each incident's view, and each notification's prototype (markdown, templates
    and the email package's work, done once for every subscriber of the batch)."""

    def __init__(self, session: Session, codes: set[str]) -> None:
        self.session = session
        rows = session.scalars(select(Subscriber).where(Subscriber.code.in_(codes)))
        self.subscribers = {s.code: s for s in rows}
        self._views: dict[int, tuple[Incident, IncidentView] | None] = {}
        self._prototypes: dict[tuple[int, int | None, str], render.Prototype] = {}

    def prototype(
        self, job: Job, page: render.MailPage, clock: Callable[[], datetime]
    ) -> render.Prototype | None:
        """The job's notification built once for the batch, from the incident as it is now."""
        if job.incident_id is None:
            return None
        if job.incident_id not in self._views:
            incident = incident_store.get_by_id(self.session, job.incident_id)
            self._views[job.incident_id] = (
                None if incident is None else (incident, incident_view(incident))
            )
        loaded = self._views[job.incident_id]
        if loaded is None:
            return None
        key = (job.incident_id, job.update_id, job.event)
        if key not in self._prototypes:
            incident, view = loaded
            code = next((u.code for u in incident.updates if u.id == job.update_id), None)
            shown = next((u for u in view.updates if u.code == code), None)
            self._prototypes[key] = render.Prototype(
                page=page,
                view=view,
                update=shown,
                event=job.event,
                now=clock(),
                body=render.notification_body(page, view, shown),
            )
        return self._prototypes[key]


class _Marks:
    """Sent mails, recorded in groups of MARK_EVERY or every MARK_SECONDS, whichever first.

    A group is committed by a thread of its own while the SMTP sessions go on sending
    (on PostgreSQL a record is three round trips, which stalled the session that filled
    the group a tenth of its time); the next group waits for the one before, so at most
    one group is being recorded while the next fills, as when the sessions recorded
    them themselves."""

    def __init__(self, sender: EmailSender) -> None:
        self.sender = sender
        self.ids: list[int] = []
        self.since = time.monotonic()
        self.lock = threading.Lock()  # the batch's SMTP sessions share it
        self.recorder: ThreadPoolExecutor | None = None
        self.recording: Future[None] | None = None

    def add(self, job: Job) -> None:
        with self.lock:
            self.ids.append(job.id)
            if len(self.ids) < MARK_EVERY and time.monotonic() - self.since < MARK_SECONDS:
                return
            ids = self._take()
            if self.recorder is None:
                self.recorder = ThreadPoolExecutor(1, thread_name_prefix="mail-marks")
            self.recording = self.recorder.submit(self.sender._mark_sent, ids)

    def flush(self) -> None:
        """Record what is left and wait until every group is recorded."""
        with self.lock:
            ids = self._take()
            if self.recorder is not None:
                self.recorder.shutdown()
                self.recorder = None
        if ids:
            self.sender._mark_sent(ids)

    def _take(self) -> list[int]:
        """The group so far, once the group before it is recorded (caller holds the lock)."""
        if self.recording is not None:
            self.recording.result()
            self.recording = None
        ids, self.ids, self.since = self.ids, [], time.monotonic()
        return ids


_CONNECTION = "connection: "
_SESSION_ERRORS = (smtplib.SMTPConnectError, smtplib.SMTPHeloError, smtplib.SMTPAuthenticationError)


def _skip_reason(subscriber: Subscriber | None, event: str) -> str | None:
    """Why a mail must not go to this subscriber, or None if it may."""
    if subscriber is None:
        return "no such subscriber"
    if subscriber.unsubscribed_at is not None:
        return "unsubscribed"
    if subscriber.bounced_at is not None:
        return "its address bounces"
    if event == CONFIRM_EVENT:
        return "already confirmed" if subscriber.confirmed_at is not None else None
    if event == QUARANTINED_EVENT:
        return None  # the notice is for a quarantined webhook's owner
    if subscriber.confirmed_at is None:
        return "not confirmed"
    if subscriber.kind != "email" or subscriber.quarantined_at is not None:
        return "not an active email subscriber"
    return None


def _decode(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


def _scrub(text: str, to: render.MailTo) -> str:
    """An error fit for logs and the outbox: the address, if the server echoed it, hidden."""
    return text.replace(to.address, f"<subscriber {to.code}>") if to.address else text


# -- wiring ------------------------------------------------------------------------------


def mail_page(settings: Settings) -> render.MailPage:
    """What every mail says about the page and where its links go."""
    return render.MailPage(
        name=settings.page_name,
        url=settings.page_url,
        # STATUSBOT_APP_URL (the subscription pages) defaults to the page URL (SPEC §9).
        app_url=settings.app_url,
        sender=settings.mail_sender,
        tz=settings.tz,
    )


def email_sender(
    runtime: Runtime, *, stream: TextIO | None = None, context: ssl.SSLContext | None = None
) -> EmailSender:
    """The sender for this runtime: SMTP when STATUSBOT_SMTP_URL is set, else printing to
    `stream` (stdout by default), for `statusbot shell` and `run`."""
    settings = runtime.settings
    mailer: Callable[[], Mailer]
    if settings.smtp_url:
        target = smtp_target(settings.smtp_url)
        mailer = lambda: SmtpMailer(target, context=context)  # noqa: E731
    else:
        out = stream or sys.stdout
        mailer = lambda: PrintingMailer(out)  # noqa: E731
    return EmailSender(runtime.factory, mail_page(settings), mailer, clock=runtime.clock)
