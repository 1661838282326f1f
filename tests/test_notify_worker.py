"""The subscriber deliverers' shared worker: once, in order per line, retried, given up."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from bot.notify.worker import (
    FIRST_RETRY,
    Delivered,
    GiveUp,
    Job,
    OutboxDeliverer,
    Outcome,
    Retry,
    backoff,
)
from storage import outbox
from storage.db import make_sessionmaker
from storage.models import OutboxEntry
from tests.conftest import FakeClock


class Recording:
    """A sender that keeps what it was given and answers as told, per line."""

    kind = outbox.Kind.EMAIL

    def __init__(self, answers: dict[str, list[Outcome]] | None = None) -> None:
        self.answers = answers or {}
        self.sent: list[tuple[str, int]] = []
        self.given_up: list[tuple[int, str]] = []
        self.lock = threading.Lock()

    def send(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
        out: list[Outcome] = []
        with self.lock:
            for job in jobs:
                queue = self.answers.get(job.channel)
                outcome = queue.pop(0) if queue else Delivered()
                if isinstance(outcome, Delivered):
                    self.sent.append((job.channel, job.id))
                out.append(outcome)
        return out

    def on_give_up(self, session: Session, job: Job, error: str) -> None:
        self.given_up.append((job.id, error))


def queue(factory: sessionmaker[Session], clock: FakeClock, lines: dict[str, int]) -> list[int]:
    """`n` email entries on each subscriber's line, oldest first; their ids."""
    ids: list[int] = []
    with factory.begin() as session:
        for line, n in lines.items():
            for k in range(n):
                ids += outbox.enqueue(
                    session,
                    channels=[line],
                    event="incident.updated",
                    at=clock.now,
                    payload={"k": k},
                    kind=outbox.Kind.EMAIL,
                )
    return ids


def entries(factory: sessionmaker[Session]) -> dict[int, OutboxEntry]:
    with factory() as session:
        return {e.id: e for e in session.scalars(select(OutboxEntry))}


def test_each_entry_is_sent_once_in_order_per_line(engine: Engine, clock: FakeClock) -> None:
    factory = make_sessionmaker(engine)
    ids = queue(factory, clock, {"sub-a": 3, "sub-b": 2})
    sender = Recording()
    deliverer = OutboxDeliverer(factory, sender, clock=clock)
    while deliverer.deliver_pending(limit=10):
        pass
    assert [i for line, i in sender.sent if line == "sub-a"] == ids[:3]
    assert [i for line, i in sender.sent if line == "sub-b"] == ids[3:]
    assert all(e.delivered_at == clock.now for e in entries(factory).values())


def test_slack_lines_are_not_touched(engine: Engine, clock: FakeClock) -> None:
    factory = make_sessionmaker(engine)
    with factory.begin() as session:
        outbox.enqueue(session, channels=["C1"], event="incident.updated", at=clock.now)
    assert OutboxDeliverer(factory, Recording(), clock=clock).deliver_pending() == 0
    (entry,) = entries(factory).values()
    assert entry.delivered_at is None and entry.claimed_by is None


def test_many_deliverers_at_once_send_each_entry_once(engine: Engine, clock: FakeClock) -> None:
    factory = make_sessionmaker(engine)
    ids = queue(factory, clock, {f"sub-{n}": 2 for n in range(40)})
    sender = Recording()
    workers = [OutboxDeliverer(factory, sender, clock=clock) for _ in range(4)]

    def drain(deliverer: OutboxDeliverer) -> None:
        for _ in range(20):
            deliverer.deliver_pending(limit=7)

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = [i for _, i in sender.sent]
    assert sorted(sent) == sorted(ids), "every entry once, none twice"


def test_a_temporary_failure_waits_and_is_retried(engine: Engine, clock: FakeClock) -> None:
    factory = make_sessionmaker(engine)
    (first, second) = queue(factory, clock, {"sub-a": 2})
    sender = Recording({"sub-a": [Retry("451 try later")]})
    deliverer = OutboxDeliverer(factory, sender, clock=clock, jitter=lambda: 0.0)
    assert deliverer.deliver_pending() == 0
    entry = entries(factory)[first]
    assert entry.attempts == 1 and entry.last_error == "451 try later"
    assert entry.next_attempt_at == clock.now + timedelta(seconds=FIRST_RETRY)
    assert deliverer.deliver_pending() == 0, "it waits, and the line waits behind it"
    clock.advance(seconds=FIRST_RETRY)
    assert deliverer.deliver_pending() == 1
    assert deliverer.deliver_pending() == 1
    assert [i for _, i in sender.sent] == [first, second]


def test_backoff_doubles_from_within_ten_seconds_to_an_hour() -> None:
    assert backoff(1, 0.0) <= 10
    assert backoff(2, 0.0) == 2 * backoff(1, 0.0)
    assert backoff(30, 0.0) == 3600
    assert backoff(3, 1.0) < backoff(3, 0.0)


def test_still_failing_after_a_day_is_given_up_and_the_sender_told(
    engine: Engine, clock: FakeClock
) -> None:
    factory = make_sessionmaker(engine)
    (only,) = queue(factory, clock, {"sub-a": 1})
    sender = Recording({"sub-a": [Retry("connection refused")] * 100})
    deliverer = OutboxDeliverer(factory, sender, clock=clock)
    tries = 0
    while entries(factory)[only].failed_at is None:
        deliverer.deliver_pending()
        clock.advance(hours=1)
        tries += 1
        assert tries < 40
    entry = entries(factory)[only]
    assert "connection refused" in (entry.last_error or "")
    assert sender.given_up == [(only, entry.last_error)]
    assert tries >= 24


def test_a_permanent_failure_is_given_up_at_once(engine: Engine, clock: FakeClock) -> None:
    factory = make_sessionmaker(engine)
    (bounced, after) = queue(factory, clock, {"sub-a": 2})
    sender = Recording({"sub-a": [GiveUp("550 no such user")]})
    deliverer = OutboxDeliverer(factory, sender, clock=clock)
    deliverer.deliver_pending()
    assert entries(factory)[bounced].failed_at == clock.now
    assert sender.given_up == [(bounced, "550 no such user")]
    deliverer.deliver_pending()
    assert [i for _, i in sender.sent] == [after], "a given-up entry holds nothing back"


def test_a_sender_that_raises_loses_nothing(engine: Engine, clock: FakeClock) -> None:
    factory = make_sessionmaker(engine)
    (only,) = queue(factory, clock, {"sub-a": 1})

    class Broken(Recording):
        def send(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
            raise ConnectionResetError("SMTP went away")

    OutboxDeliverer(factory, Broken(), clock=clock).deliver_pending()
    entry = entries(factory)[only]
    assert entry.delivered_at is None and entry.failed_at is None
    assert entry.attempts == 1 and "SMTP went away" in (entry.last_error or "")
    assert entry.claimed_by is None
