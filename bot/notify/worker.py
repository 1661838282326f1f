"""Delivering one kind of outbox line (fan-out, email, webhook): claims, leases, retries.

The guarantees are the Slack deliverer's (bot/slack/delivery.py), for any kind:

- Exactly once per line entry: an entry is claimed with a conditional UPDATE that
  sets a lease; of many deliverers (threads or processes) one wins. Outcomes are
  written only while the lease is still ours.
- In order per line (a subscriber and an incident): only the head of a line may be
  sent (storage/outbox.py).
- Failures: a sender says `Retry` (the entry waits and counts an attempt) or
  `GiveUp` (never sent; `failed_at` and `last_error` say why). An entry still
  failing `give_up_after` its creation is given up, and the sender hears of it
  (`on_give_up`: quarantine a webhook, say so to its owner).

A `Sender` gets a batch of claimed jobs at once, so an email sender can use one
SMTP connection for all of them.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot import instruments
from bot.runtime import Clock, system_clock
from storage import outbox
from storage.db import transaction
from storage.models import OutboxEntry

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
FIRST_RETRY = 5.0  # seconds: SPEC §9 wants the first retry within 10 s
RETRY_CAP = 3600.0  # doubling, capped at an hour
GIVE_UP_AFTER = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Job:
    """One claimed outbox entry, as its sender needs it."""

    id: int
    kind: str
    channel: str  # the line's name: a subscriber's code, or the fan-out line
    event: str
    incident_id: int | None
    update_id: int | None
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Delivered:
    """Sent."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Not sent this time (a temporary failure): try again later."""

    error: str
    delay: float | None = None  # seconds; None: the worker's backoff


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Never to be sent (a permanent failure, or nobody to send it to)."""

    error: str


Outcome = Delivered | Retry | GiveUp
# How each outcome is counted for the operators (bot/instruments.py).
_OUTCOMES: dict[type, str] = {Delivered: "delivered", Retry: "retried", GiveUp: "failed"}


class Sender(Protocol):
    """What delivers one kind of entry."""

    kind: str

    def send(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
        """Send each job; one outcome per job, in the same order. Must not raise for a
        job's own failure (an exception counts as Retry for every job of the batch)."""
        ...

    def on_give_up(self, session: Session, job: Job, error: str) -> None:
        """An entry was given up on, inside the transaction that records it."""
        ...


def backoff(attempts: int, jitter: float) -> float:
    """Seconds before retry number `attempts` (1-based): 5 s, 10 s, 20 s … up to an hour,
    with up to a quarter of jitter so retries of many entries don't arrive together."""
    ceiling = min(RETRY_CAP, FIRST_RETRY * 2.0 ** (attempts - 1))
    return ceiling * (1.0 - jitter / 4)


class OutboxDeliverer:
    """Drains one kind's lines; safe to run in many threads and processes at once.

    Fits bot.delivery_worker.DeliveryWorker, which runs it in a thread, poked after
    every change.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        sender: Sender,
        *,
        clock: Clock = system_clock,
        lease: timedelta | None = None,
        give_up_after: timedelta = GIVE_UP_AFTER,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.factory = factory
        self.sender = sender
        self.clock = clock
        # A sender whose passes may take long (webhooks waiting on slow receivers) says
        # how long its lease must be.
        self.lease: timedelta = lease if lease is not None else getattr(sender, "lease", LEASE)
        self.give_up_after = give_up_after
        self.jitter = jitter

    def paused(self) -> bool:
        """Never paused: a subscriber's failure holds up only its own line."""
        return False

    def deliver_pending(self, limit: int = 200) -> int:
        """Claim up to `limit` due entries, send them as one batch; how many were sent."""
        token = secrets.token_hex(16)
        jobs = self._claim(limit, token)
        if not jobs:
            return 0
        try:
            outcomes = list(self.sender.send(jobs))
        except Exception as exc:  # a bug, or the service went away mid-batch
            log.exception("%s delivery of %d entries failed", self.sender.kind, len(jobs))
            outcomes = [Retry(f"{type(exc).__name__}: {exc}") for _ in jobs]
        if len(outcomes) != len(jobs):
            raise RuntimeError(f"{self.sender.kind} sender returned the wrong number of outcomes")
        self._record(jobs, outcomes, token)
        for outcome in outcomes:
            instruments.count_delivery(self.sender.kind, _OUTCOMES.get(type(outcome), "failed"))
        return sum(isinstance(o, Delivered) for o in outcomes)

    # -- claiming ------------------------------------------------------------------------
    def _claim(self, limit: int, token: str) -> list[Job]:
        now = self.clock()
        kind = self.sender.kind
        with self.factory() as session:
            heads = outbox.due(session, now=now, limit=limit, kind=kind)
        if not heads:
            return []
        with transaction(self.factory) as session:
            # One UPDATE for the whole batch: claim()'s conditions, per line, at once.
            outbox.claim_many(
                session, heads, now=now, until=now + self.lease, token=token, kind=kind
            )
        with self.factory() as session:
            rows = session.scalars(
                select(OutboxEntry)
                .where(OutboxEntry.id.in_([h.id for h in heads]), OutboxEntry.claimed_by == token)
                .order_by(OutboxEntry.id)
            )
            return [
                Job(
                    id=e.id,
                    kind=e.kind,
                    channel=e.channel,
                    event=e.event,
                    incident_id=e.incident_id,
                    update_id=e.update_id,
                    payload=dict(e.payload or {}),
                    attempts=e.attempts,
                    created_at=e.created_at,
                )
                for e in rows
            ]

    # -- recording -----------------------------------------------------------------------
    def _record(self, jobs: Sequence[Job], outcomes: Sequence[Outcome], token: str) -> None:
        now = self.clock()
        with transaction(self.factory) as session:
            delivered = [
                j.id for j, o in zip(jobs, outcomes, strict=True) if isinstance(o, Delivered)
            ]
            if delivered:
                # One UPDATE for every entry sent (a batch is mostly these).
                kept = _rowcount(
                    session.execute(
                        update(OutboxEntry)
                        .where(OutboxEntry.id.in_(delivered), OutboxEntry.claimed_by == token)
                        .values(
                            claimed_until=None, claimed_by=None, delivered_at=now, last_error=None
                        )
                        .execution_options(synchronize_session=False)
                    )
                )
                if kept != len(delivered):
                    log.error(
                        "%s: %d of %d entries sent were taken over by another deliverer",
                        self.sender.kind,
                        len(delivered) - kept,
                        len(delivered),
                    )
            for job, outcome in zip(jobs, outcomes, strict=True):
                if isinstance(outcome, Delivered):
                    continue
                if isinstance(outcome, Retry) and now - job.created_at < self.give_up_after:
                    attempts = job.attempts + 1
                    delay = outcome.delay
                    if delay is None:
                        delay = backoff(attempts, self.jitter())
                    log.warning(
                        "%s entry %s: %s; retrying in %.0f s",
                        self.sender.kind,
                        job.id,
                        outcome.error,
                        delay,
                    )
                    self._release(
                        session,
                        job,
                        token,
                        attempts=attempts,
                        next_attempt_at=now + timedelta(seconds=delay),
                        last_error=outcome.error[:2000],
                    )
                    continue
                error = outcome.error
                if isinstance(outcome, Retry):
                    error = f"{error} (still failing {self.give_up_after} after it was queued)"
                log.error("%s entry %s given up: %s", self.sender.kind, job.id, error)
                if self._release(
                    session,
                    job,
                    token,
                    attempts=job.attempts + 1,
                    failed_at=now,
                    last_error=error[:2000],
                ):
                    self.sender.on_give_up(session, job, error)

    def _release(self, session: Session, job: Job, token: str, **values: Any) -> bool:
        """Write an outcome if the lease is still ours; whether it was."""
        result = session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.id == job.id, OutboxEntry.claimed_by == token)
            .values(claimed_until=None, claimed_by=None, **values)
            .execution_options(synchronize_session=False)
        )
        kept = _rowcount(result) == 1
        if not kept:
            log.error("%s entry %s was taken over by another deliverer", self.sender.kind, job.id)
        return kept


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
