"""Delivering the outbox to Slack: one announcement per incident and channel, kept current.

Commands write outbox rows in the same transaction as their change; this module
sends them. Per channel, an incident's or maintenance's first entry posts its
announcement (its ts kept in `Announcement`); later entries edit it in place
(`chat.update`, rendered from the current state) and post their update as a
reply in its thread, broadcast to the channel when it closes the incident.
`component.changed` is a plain channel message; reminders (`incident.stale`,
`maintenance.notice`, or any incident event with a `text` payload) are thread
replies.

Guarantees, and how:

- In order per incident and channel: an entry waits while an older entry of
  the same incident and channel is undelivered (also while that one waits for
  its retry); an entry given up on (`failed_at`) no longer holds the others.
  Entries without an incident (component changes) are ordered per channel.
- Once per channel: a deliverer claims an entry with a conditional UPDATE that
  sets a lease (`claimed_until`, `claimed_by`); only one claim can succeed, on
  SQLite and on PostgreSQL. Every Slack call renews the lease first, and every
  write after one checks the lease is still ours. A crashed deliverer's lease
  runs out and another resumes its entries.
- Idempotent steps: the announcement's ts is committed as soon as it is
  posted, before the thread reply, so a retry edits it instead of posting it
  again; the reply is committed with the entry's delivery.
- Rate limits: each Slack method is kept to its limit in its own scope
  before Slack has to say so (`bot/slack/pacing.py`: a post a second per
  channel, about 50 edits a minute per workspace). Channels are worked in
  parallel, on a bounded pool of threads, one thread per channel at a time; a
  channel whose next post may not go yet is left for a moment and the others
  go on. A 429 holds back that method in that scope (one channel for posts,
  the workspace for edits) for its `Retry-After`, and the entry waits as long.
- Coalesced edits: an entry whose incident has a newer change waiting in the
  same channel posts its thread reply but leaves the announcement alone; the
  newest one edits it once, showing the latest state. Thread replies are never
  coalesced or dropped, and stay in order. A reply never waits for the
  workspace's edit allowance: when it is spent, the reply goes and the edit
  follows as an entry of its own (`REFRESH_EVENT`).
- Failures: transient errors → exponential backoff with jitter, given up after
  `max_attempts`; permanent errors → given up at once. Either way `last_error`
  says why.

- Lost answers: Slack has no idempotency key for chat.postMessage, so every
  message carries one of ours (entry id and role) in its metadata. When an
  attempt may have posted without our knowing (the entry was tried before, or
  its earlier claim ran out), the retry asks Slack for a message with that key
  first (`find_posted`) and keeps it instead of posting again. Without the
  history scopes Slack can't be asked, and the retry posts: at least once.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from bot import instruments
from bot.delivery_worker import DeliveryWorker
from bot.runtime import Runtime
from bot.slack.events import (
    BROADCAST_EVENTS,
    COMPONENT_EVENT,
    INTERNAL_NOTE,
    NOTE_EVENTS,
    POSTMORTEM_EVENT,
    REFRESH_EVENT,
    REFRESH_RECHECK,
    REPLY_EVENTS,
)
from bot.slack.gateway import Permanent, RateLimited, SlackError, SlackGateway, Transient
from bot.slack.jobs import Job, load_job
from bot.slack.pacing import NO_LIMITS, POST, UPDATE, NotYet, Pacer
from renderers import slack as render
from storage import outbox
from storage.db import transaction
from storage.models import Announcement, OutboxEntry
from storage.snapshot import IncidentView

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

BACKOFF_BASE = 2.0  # seconds before the first retry of a transient failure
BACKOFF_CAP = 300.0
MAX_ATTEMPTS = 20  # transient failures before an entry is given up (30 to 60 minutes)
LEASE = timedelta(minutes=2)  # well above a few Slack round trips (15 s timeout each)
RECORD_TRIES = 3
# Channels worked at once. Most of a delivery is waiting for Slack or the database,
# so a few threads keep 20 channels at their post-a-second limit.
THREADS = 8
SLACK_REST_RATIO = 0.0


def system_clock() -> datetime:
    return datetime.now(UTC)


class LostClaim(RuntimeError):
    """Another deliverer holds the entry now (our lease ran out): stop touching it."""


class Unrecorded(RuntimeError):
    """Slack took a message but the database would not record it."""


class Deliverer:
    """Drains the outbox to Slack; safe to run in many threads and processes at once."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        gateway: SlackGateway,
        *,
        page_url: str,
        tz: tzinfo,
        clock: Clock = system_clock,
        max_attempts: int = MAX_ATTEMPTS,
        lease: timedelta = LEASE,
        jitter: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
        pacer: Pacer | None = None,
        threads: int = 1,
    ) -> None:
        self.factory = factory
        self.gateway = gateway
        self.page_url = page_url
        self.tz = tz
        self.clock = clock
        self.max_attempts = max_attempts
        self.lease = lease
        self.jitter = jitter
        self.sleep = sleep
        # Without a pacer of Slack's limits, only 429s hold a method back (and never by
        # sleeping: the entry waits in the outbox), on this deliverer's clock.
        self.pacer = pacer or Pacer(
            NO_LIMITS, clock=lambda: self.clock().timestamp(), sleep=sleep, max_wait=0.0
        )
        self.threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._renewed: dict[str, datetime] = {}  # claim token → when its lease was set
        self._wake_at: float | None = None  # pacer time when something held back may go

    # -- the loop -----------------------------------------------------------------------
    def deliver_pending(self, limit: int = 50) -> int:
        """Send what is due, oldest first, up to `limit` entries; the number delivered.

        The due entries are split into lanes, one per channel, worked in parallel
        (up to `threads` at once); within a lane, in order.
        """
        delivered = 0
        tried: set[int] = set()
        with self._lock:
            self._wake_at = None
        while len(tried) < limit:
            lanes: dict[str, list[outbox.Head]] = {}
            for head in self._due(limit):
                if head.id not in tried and len(tried) < limit:
                    tried.add(head.id)
                    lanes.setdefault(head.channel, []).append(head)
            if not lanes:
                break
            sent, tried_now = self._run_lanes(list(lanes.values()))
            delivered += sent
            if not tried_now:
                break  # what is left waits for its channel's turn, or another deliverer has it
        return delivered

    def next_wake(self) -> float | None:
        """Seconds until something the last pass held back may go (None: nothing held)."""
        with self._lock:
            at = self._wake_at
        return None if at is None else max(0.0, at - self.pacer.clock())

    def paused(self, channel: str, method: str = POST) -> bool:
        """Whether a 429 told us to send no `method` in `channel` for now."""
        return self.pacer.held(method, channel) > 0

    def close(self) -> None:
        """Let the lane threads go."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _run_lanes(self, lanes: list[list[outbox.Head]]) -> tuple[int, int]:
        """Work the lanes; how many entries were delivered, and how many claimed."""
        if self.threads == 1 or len(lanes) == 1:
            done = [self._lane(lane) for lane in lanes]
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="slack-lane")
            done = list(self._pool.map(self._lane, lanes))
        return sum(d for d, _ in done), sum(c for _, c in done)

    def _lane(self, heads: list[outbox.Head]) -> tuple[int, int]:
        """One channel's due entries, in order, while its post limit lets them go; how many
        were delivered, and how many claimed."""
        delivered = claimed = 0
        for head in heads:
            wait = self.pacer.wait(POST, head.channel)
            if wait > 0:
                self._wake_in(wait)
                break
            token = self._claim(head)
            if token is None:
                continue
            claimed += 1
            self._renewed[token] = self.clock()
            try:
                delivered += self._deliver(head.id, token, stale=head.stale)
            finally:
                self._renewed.pop(token, None)
        return delivered, claimed

    def _wake_in(self, seconds: float) -> None:
        with self._lock:
            at = self.pacer.clock() + seconds
            if self._wake_at is None or at < self._wake_at:
                self._wake_at = at

    # -- queries (storage/outbox.py) ------------------------------------------------------
    def _due(self, limit: int) -> list[outbox.Head]:
        with self.factory() as session:
            return outbox.due(session, now=self.clock(), limit=limit)

    def _claim(self, head: outbox.Head) -> str | None:
        """Take an entry; the claim token, or None if another deliverer has it (or it waits)."""
        token = secrets.token_hex(16)
        now = self.clock()
        with transaction(self.factory) as session:
            won = outbox.claim(session, head, now=now, until=now + self.lease, token=token)
        return token if won else None

    # -- one entry ----------------------------------------------------------------------
    def _deliver(self, entry_id: int, token: str, *, stale: bool = False) -> bool:
        """Send one claimed entry (`stale`: an earlier claim of it ran out); whether it was
        delivered."""
        try:
            with self.factory() as session:
                job = load_job(session, entry_id, token, stale=stale)
        except Exception:
            # Unreadable (a bug, or the database went away): leave the claim to
            # run out, so it is tried again in a while rather than at once.
            log.exception("Outbox entry %s could not be read", entry_id)
            return False
        if job is None:
            return False
        try:
            if job.incident_id is None:
                self._send_plain(job, token)
            else:
                self._send_incident(job, token)
        except LostClaim:
            log.error("Outbox entry %s was taken over by another deliverer mid-send", job.id)
            return False
        except Unrecorded:
            # Slack has the message but we could not say so: keep the claim (it runs
            # out after the lease) instead of sending it again straight away.
            log.exception("Outbox entry %s was sent but could not be recorded", job.id)
            return False
        except RateLimited as exc:
            log.warning(
                "Slack rate limit on %s in %s; holding it %gs",
                exc.method,
                job.channel,
                exc.retry_after,
            )
            self.pacer.hold(exc.method, job.channel, exc.retry_after)
            instruments.count_rate_limited(exc.method)
            self._retry(job, token, exc, delay=exc.retry_after, counts=False)
            self._wake_in(exc.retry_after)
            return False
        except NotYet as exc:
            # Our own pacing: not an error, and no attempt spent. A left-over edit
            # heads its incident's line, so it looks again every few seconds: once a
            # newer change waits behind it, it is superseded and steps aside.
            seconds = (
                min(exc.seconds, REFRESH_RECHECK) if job.event == REFRESH_EVENT else exc.seconds
            )
            self._release(job, token, next_attempt_at=self.clock() + timedelta(seconds=seconds))
            self._wake_in(seconds)
            return False
        except Transient as exc:
            self._retry(job, token, exc, delay=self._backoff(job.attempts + 1), counts=True)
            return False
        except Permanent as exc:
            self._give_up(job, token, str(exc))
            return False
        except Exception as exc:
            # A bug or a database hiccup must not stop the queue or lose the entry:
            # it is retried with backoff like a transient error, then given up.
            log.exception("Outbox entry %s failed unexpectedly", job.id)
            error = SlackError("statusbot", f"{type(exc).__name__}: {exc}")
            self._retry(job, token, error, delay=self._backoff(job.attempts + 1), counts=True)
            return False
        log.info("Delivered outbox entry %s (%s) to %s", job.id, job.event, job.channel)
        instruments.count_delivery(outbox.Kind.SLACK, "delivered")
        return True

    def _send_plain(self, job: Job, token: str) -> None:
        if job.event == COMPONENT_EVENT:
            message = render.component_change(job.payload, page_url=self.page_url)
        elif isinstance(job.payload.get("text"), str) and job.payload["text"].strip():
            message = render.note(job.payload["text"], page_url=self.page_url)
        else:
            raise Permanent("statusbot", f"don't know how to announce {job.event!r}")
        ts = self._post(job, token, "message", message)
        self._finish(job, token, message_ts=ts)

    def _send_incident(self, job: Job, token: str) -> None:
        view = job.view
        if view is None:
            raise Permanent("statusbot", f"incident {job.incident_id} no longer exists")
        reply = self._reply(job, view)
        ts = job.announcement_ts
        refresh = False
        if ts is None:
            ts = self._post_announcement(job, token, view, delivered=reply is None)
            if reply is None:
                return
        elif not job.superseded and job.event not in NOTE_EVENTS:
            message = render.announcement(view, page_url=self.page_url, tz=self.tz)
            try:
                edited = self._edit(job, token, ts, message)
            except NotYet:
                if reply is None:
                    raise
                # The workspace's edits are spent for now (Slack allows about 50 a
                # minute): the reply need not wait for one. It goes now, and an entry
                # of its own, after it, brings the announcement up to date.
                edited = refresh = True
            if not edited:
                # Someone deleted the announcement: post a new one to keep current.
                ts = self._post_announcement(job, token, view, delivered=reply is None)
                if reply is None:
                    return
        if job.edited_reply_ts is not None and job.update is not None:
            # The reply that carried an update whose text was fixed (if still there).
            fixed = render.update_reply(view, job.update, tz=self.tz, page_url=self.page_url)
            self._edit(job, token, job.edited_reply_ts, fixed)
        if reply is None:
            self._finish(job, token)
            return
        reply_ts = self._post(
            job, token, "reply", reply, thread_ts=ts, reply_broadcast=job.event in BROADCAST_EVENTS
        )
        self._finish(job, token, message_ts=reply_ts, refresh=refresh)

    def _post(
        self,
        job: Job,
        token: str,
        role: str,
        message: dict[str, Any],
        *,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
    ) -> str:
        """Post one of an entry's messages (its announcement, reply or plain message); its ts.

        Each carries a key (entry and role) in its metadata. When an earlier attempt
        may have posted it without our knowing (its answer was lost, or the process
        died before recording it), Slack is asked first, and what it has is kept.
        """
        key = f"{job.id}:{role}"
        self._renew(job, token)
        if job.uncertain:
            lookup = "conversations.replies" if thread_ts else "conversations.history"
            found = self.gateway.find_posted(
                job.channel,
                key,
                thread_ts=thread_ts,
                after=job.last_reply_ts,
                pace=lambda: self.pacer.acquire(lookup, job.channel),
            )
            if found is not None:
                log.info(
                    "Outbox entry %s: Slack already has its %s; not posting it again", job.id, role
                )
                return found
        self.pacer.acquire(POST, job.channel)
        try:
            return self.gateway.post_message(
                job.channel,
                text=message["text"],
                blocks=message["blocks"],
                thread_ts=thread_ts,
                reply_broadcast=reply_broadcast,
                key=key,
            )
        finally:
            self.pacer.answered(POST, job.channel)

    def _edit(self, job: Job, token: str, ts: str, message: dict[str, Any]) -> bool:
        """Edit a message in place; False if it was deleted in Slack."""
        self._renew(job, token)
        self.pacer.acquire(UPDATE, job.channel)
        try:
            self.gateway.update_message(
                job.channel, ts, text=message["text"], blocks=message["blocks"]
            )
        except Permanent as exc:
            if exc.error != "message_not_found":
                raise
            return False
        return True

    def _reply(self, job: Job, view: IncidentView) -> dict[str, Any] | None:
        """The thread reply an entry posts, if any."""
        if job.event == POSTMORTEM_EVENT and view.postmortem is not None:
            return render.postmortem_reply(view, page_url=self.page_url)
        if job.event == INTERNAL_NOTE:
            return render.internal_note(
                view, str(job.payload.get("note") or ""), author=str(job.payload.get("author"))
            )
        if job.event in REPLY_EVENTS and job.update is not None:
            return render.update_reply(view, job.update, tz=self.tz, page_url=self.page_url)
        text = job.payload.get("text")
        if isinstance(text, str) and text.strip():
            return render.note(text, page_url=render.incident_url(self.page_url, view.number))
        return None

    def _post_announcement(
        self, job: Job, token: str, view: IncidentView, *, delivered: bool
    ) -> str:
        """Post the announcement and commit its ts at once (with the delivery, if that's all)."""
        message = render.announcement(view, page_url=self.page_url, tz=self.tz)
        ts = self._post(job, token, "announcement", message)
        incident_id = job.incident_id
        assert incident_id is not None

        def record(session: Session) -> None:
            self._mark(
                session, job, token, delivered=delivered, message_ts=ts if delivered else None
            )
            found = session.scalar(
                select(Announcement).where(
                    Announcement.incident_id == incident_id,
                    Announcement.channel == job.channel,
                )
            )
            if found is None:
                session.add(
                    Announcement(
                        incident_id=incident_id,
                        channel=job.channel,
                        ts=ts,
                        created_at=self.clock(),
                    )
                )
            else:
                found.ts = ts

        self._record(record)
        return ts

    # -- bookkeeping --------------------------------------------------------------------
    def _mark(
        self,
        session: Session,
        job: Job,
        token: str,
        *,
        delivered: bool,
        message_ts: str | None = None,
    ) -> None:
        """Record progress on a claimed entry; LostClaim if it isn't ours any more."""
        now = self.clock()
        values: dict[str, Any] = {"claimed_until": now + self.lease}
        if delivered:
            values = {
                "delivered_at": now,
                "claimed_until": None,
                "claimed_by": None,
                "message_ts": message_ts,
            }
        result = session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.id == job.id, OutboxEntry.claimed_by == token)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            raise LostClaim(job.id)

    def _renew(self, job: Job, token: str) -> None:
        """Before a Slack call: make sure the lease is still ours and has time left."""
        now = self.clock()
        if now - self._renewed.get(token, now - self.lease) < self.lease / 2:
            return  # claimed or renewed moments ago: no need to ask the database
        with transaction(self.factory) as session:
            self._mark(session, job, token, delivered=False)
        self._renewed[token] = now

    def _finish(
        self, job: Job, token: str, *, message_ts: str | None = None, refresh: bool = False
    ) -> None:
        """Record the entry delivered; with `refresh`, queue the announcement's edit it
        left for later (REFRESH_EVENT, at the end of its line) in the same commit."""

        def record(session: Session) -> None:
            self._mark(session, job, token, delivered=True, message_ts=message_ts)
            if refresh:
                outbox.enqueue(
                    session,
                    channels=[job.channel],
                    event=REFRESH_EVENT,
                    at=self.clock(),
                    incident_id=job.incident_id,
                )

        self._record(record)

    def _record(self, write: Callable[[Session], None]) -> None:
        """Commit what a Slack call did, trying hard: a failure here means a resend."""
        for attempt in range(RECORD_TRIES):
            try:
                with transaction(self.factory) as session:
                    write(session)
                return
            except DBAPIError as exc:
                if attempt + 1 == RECORD_TRIES:
                    raise Unrecorded(str(exc)) from exc
                log.warning("Recording a sent message failed (%s); trying again", exc)
                self.sleep(0.5 * (attempt + 1))

    def _retry(self, job: Job, token: str, exc: SlackError, *, delay: float, counts: bool) -> None:
        """Put the entry back for later; give it up after too many transient failures."""
        attempts = job.attempts + (1 if counts else 0)
        if attempts >= self.max_attempts:
            self._give_up(job, token, f"{exc} (gave up after {attempts} attempts)", attempts)
            return
        log.warning("Outbox entry %s: %s; retrying in %.1fs", job.id, exc, delay)
        instruments.count_delivery(outbox.Kind.SLACK, "retried")
        self._release(
            job,
            token,
            attempts=attempts,
            next_attempt_at=self.clock() + timedelta(seconds=delay),
            last_error=str(exc),
        )

    def _give_up(self, job: Job, token: str, error: str, attempts: int | None = None) -> None:
        log.error("Outbox entry %s (%s to %s) failed: %s", job.id, job.event, job.channel, error)
        instruments.count_delivery(outbox.Kind.SLACK, "failed")
        self._release(
            job,
            token,
            attempts=job.attempts + 1 if attempts is None else attempts,
            failed_at=self.clock(),
            last_error=error,
        )

    def _release(self, job: Job, token: str, **values: Any) -> None:
        with transaction(self.factory) as session:
            session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id == job.id, OutboxEntry.claimed_by == token)
                .values(claimed_until=None, claimed_by=None, **values)
                .execution_options(synchronize_session=False)
            )

    def _backoff(self, attempts: int) -> float:
        """Exponential backoff with jitter: about 2s, 4s, 8s … up to 5 minutes."""
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** (attempts - 1))
        return max(1.0, ceiling * (0.5 + self.jitter() / 2))


def start_delivery(
    runtime: Runtime, gateway: SlackGateway, *, interval: float = 2.0
) -> DeliveryWorker:
    """Deliver the runtime's outbox in a background thread, poked after every change."""
    deliverer = Deliverer(
        runtime.factory,
        gateway,
        page_url=runtime.settings.page_url,
        tz=runtime.settings.tz,
        pacer=Pacer(),
        threads=THREADS,
    )
    # Slack's limits pace this worker (at most a post a second per channel), so it
    # needs little rest of its own between passes.
    worker = DeliveryWorker(
        deliverer, interval=interval, rest_ratio=SLACK_REST_RATIO, next_wake=deliverer.next_wake
    )
    runtime.after_change.append(worker.poke)
    return worker.start()


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
