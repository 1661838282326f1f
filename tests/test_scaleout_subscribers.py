"""Subscribers scaled out and restarted: real `statusbot serve` processes, a real SMTP
server (aiosmtpd), and a database they share.

- Two `serve` processes on one PostgreSQL database, each sent one incident update:
  both fan out and mail at once, and every subscriber gets exactly one mail per
  update, none doubled, none lost.
- One `serve` killed (SIGKILL, the whole process group) in the middle of mailing,
  then started again: nobody's mail is lost, and what is sent again is only what
  was sent but not yet recorded (at most a recording group a session, SPEC §9's
  "sent mails are recorded in groups"), with the same Message-ID, so a receiver can
  drop it. On both databases.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.orm import Session

from bot.notify.email import CONNECTIONS, MARK_EVERY
from storage import migrate
from storage import subscribers as store
from storage.models import OutboxEntry, Subscriber, new_code
from tests.fake_slack import FakeSlack
from tests.helpers import free_port, wait_healthy
from tests.smtp_sink import Sink, running
from tests.test_scaleout import ROOT, Fleet, wait_until


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def smtp(sink: Sink) -> Iterator[int]:
    """The SMTP server's port."""
    with running(sink) as port:
        yield port


def seed(engine: Engine, count: int) -> list[str]:
    """`count` confirmed email subscribers of everything, bulk inserted; their addresses."""
    now = datetime.now(UTC)
    addresses = [f"reader{n}@example.org" for n in range(count)]
    with Session(engine) as session, session.begin():
        session.execute(
            insert(Subscriber),
            [
                {
                    "code": new_code(),
                    "kind": store.EMAIL,
                    "email": address,
                    "address_key": store.address_key(store.EMAIL, address),
                    "token": store.new_token(),
                    "source": "import",
                    "created_at": now,
                    "confirmed_at": now,
                }
                for address in addresses
            ],
        )
    return addresses


def mailed(sink: Sink) -> list[tuple[str, str, str]]:
    """(recipient, Message-ID, subject) of every mail the server accepted."""
    with sink.lock:
        return [(r, str(m["Message-ID"]), str(m["Subject"])) for rs, m in sink.mails for r in rs]


def serve_in_own_group(fleet: Fleet) -> subprocess.Popen[bytes]:
    """`statusbot serve` as a process group of its own (master, workers, background), so
    the test can kill all of it at once as a crash would."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"],
        cwd=ROOT,
        env={**fleet.env, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    fleet.processes.append(process)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, process)
    fleet.bases.append(base)
    return process


def email_entries_done(engine: Engine) -> Callable[[], bool]:
    def done() -> bool:
        with Session(engine) as session:
            waiting = session.scalar(
                select(func.count())
                .select_from(OutboxEntry)
                .where(
                    OutboxEntry.kind.in_(("fanout", "email")),
                    OutboxEntry.delivered_at.is_(None),
                    OutboxEntry.failed_at.is_(None),
                )
            )
            made = session.scalar(
                select(func.count()).select_from(OutboxEntry).where(OutboxEntry.kind == "email")
            )
        return waiting == 0 and bool(made)

    return done


def test_two_serve_processes_share_the_fanout_and_mail_each_subscriber_once(
    empty_db: tuple[Engine, str], fake: FakeSlack, tmp_path: Path, sink: Sink, smtp: int
) -> None:
    engine, url = empty_db
    if engine.dialect.name != "postgresql":
        pytest.skip("scaled out means PostgreSQL; SQLite is the one-process form")
    migrate.upgrade(engine)
    addresses = seed(engine, 600)
    fleet = Fleet(url, fake, tmp_path / "public")
    fleet.env["STATUSBOT_SMTP_URL"] = f"smtp://127.0.0.1:{smtp}"
    try:
        a, b = fleet.serve(), fleet.serve()
        assert "Opened" in fleet.command(a, "open Outage -- Looking.")
        assert "Opened" in fleet.command(b, "open Slowness -- Looking.")
        wait_until(email_entries_done(engine), timeout=120)
        wait_until(lambda: len(mailed(sink)) >= 2 * len(addresses), timeout=30)
        time.sleep(1)  # anything doubled would arrive now
    finally:
        logs = fleet.stop()
    assert "Traceback" not in logs, logs
    got = mailed(sink)
    assert len(got) == 2 * len(addresses), "one mail per subscriber and incident"
    per_reader = Counter(r for r, _, _ in got)
    assert set(per_reader) == set(addresses) and set(per_reader.values()) == {2}
    assert len({mid for _, mid, _ in got}) == len(got), "no Message-ID twice"
    for title in ("Outage", "Slowness"):
        told = {r for r, _, subject in got if title in subject}
        assert told == set(addresses), f"everyone told of {title} once"


def test_serve_killed_mid_fanout_loses_no_mail_and_resends_only_the_unrecorded(
    empty_db: tuple[Engine, str], fake: FakeSlack, tmp_path: Path, sink: Sink, smtp: int
) -> None:
    engine, url = empty_db
    migrate.upgrade(engine)
    addresses = seed(engine, 1500)
    fleet = Fleet(url, fake, tmp_path / "public")
    fleet.env["STATUSBOT_SMTP_URL"] = f"smtp://127.0.0.1:{smtp}"
    killed = False
    try:
        victim = serve_in_own_group(fleet)
        assert "Opened" in fleet.command(fleet.bases[-1], "open Outage -- Looking.")
        # Mid-mailing: some mail is out, most is not.
        wait_until(lambda: len(mailed(sink)) >= 100, timeout=60)
        os.killpg(victim.pid, signal.SIGKILL)
        killed = True
        victim.wait(10)
        before = len(mailed(sink))
        assert before < len(addresses), "killed too late to be mid-fan-out"
        # The dead process's leases would run out in two minutes; make that time pass.
        with Session(engine) as session, session.begin():
            session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.claimed_by.is_not(None))
                .values(claimed_until=datetime.now(UTC) - timedelta(seconds=1))
            )
        serve_in_own_group(fleet)
        wait_until(email_entries_done(engine), timeout=120)
        wait_until(lambda: len(Counter(r for r, _, _ in mailed(sink))) >= len(addresses), 30)
        time.sleep(1)
    finally:
        logs = fleet.stop()
    assert killed
    assert "Traceback" not in logs, logs
    got = mailed(sink)
    per_reader = Counter(r for r, _, _ in got)
    assert set(per_reader) == set(addresses), "nobody's mail lost"
    again = [r for r, n in per_reader.items() if n > 1]
    # Sent again: only mails sent but not yet recorded when the process died, at most a
    # recording group being written and one filling, plus one in flight per session.
    assert len(again) <= 2 * MARK_EVERY + CONNECTIONS, len(again)
    ids_per_reader = {r: {mid for rr, mid, _ in got if rr == r} for r in again}
    assert all(len(ids) == 1 for ids in ids_per_reader.values()), "a resend keeps its Message-ID"
