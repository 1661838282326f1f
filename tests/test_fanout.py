"""The fan-out (SPEC §9 "What is sent"): one entry per notification, expanded once.

Commands run through the shell's path (Runtime.run_line); the fan-out deliverer
runs as serve's worker runs it, on both databases.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, select

from bot.notify import run_pending
from bot.notify.fanout import FanOut
from bot.runtime import Runtime
from storage import outbox
from storage import subscribers as store
from storage.models import Component, IncidentUpdate, OutboxEntry, Subscriber
from tests.conftest import FakeClock


def ok(rt: Runtime, line: str) -> str:
    result = rt.run_line(line, user="U0IC")
    assert result.ok, result.reply
    return result.reply


def subscriber(rt: Runtime, email: str, *, follows: tuple[str, ...] = (), **state: Any) -> str:
    """A subscriber, confirmed unless told otherwise; its code."""
    kind = state.pop("kind", store.EMAIL)
    with rt.factory.begin() as session:
        comps = [
            session.scalars(select(Component).where(Component.name == n)).one() for n in follows
        ]
        sub = store.add(
            session,
            kind=kind,
            email=email,
            endpoint=f"https://hooks.example.com/{email}" if kind == store.WEBHOOK else None,
            components=comps,
            source="cli",
            now=rt.clock(),
            confirmed=state.pop("confirmed", True),
        )
        for key, value in state.items():
            setattr(sub, key, value)
        return sub.code


def entries(rt: Runtime, kind: str) -> list[tuple[str, str]]:
    with rt.factory() as session:
        rows = session.execute(
            select(OutboxEntry.channel, OutboxEntry.event)
            .where(OutboxEntry.kind == kind)
            .order_by(OutboxEntry.id)
        )
        return [(c, e) for c, e in rows]


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    ok(runtime, "/component add API")
    ok(runtime, "/component add Web")
    return runtime


def test_one_fanout_entry_per_notification_filtered_by_component(rt: Runtime) -> None:
    everything = subscriber(rt, "all@example.com")
    api = subscriber(rt, "api@example.com", follows=("API",))
    web = subscriber(rt, "web@example.com", follows=("Web",))
    hook = subscriber(rt, "hook@example.com", kind=store.WEBHOOK, follows=("API",))
    for line in ("/incident open Errors --components API=major", "/incident resolve 1"):
        ok(rt, line)
    # One fan-out entry per notification, however many subscribers.
    assert entries(rt, outbox.Kind.FANOUT) == [
        (outbox.FANOUT_LINE, "incident.opened"),
        (outbox.FANOUT_LINE, "incident.resolved"),
    ]
    assert run_pending(rt, [])["fanout"] == 2
    mails = entries(rt, outbox.Kind.EMAIL)
    assert sorted(mails) == sorted(
        (code, e) for code in (everything, api) for e in ("incident.opened", "incident.resolved")
    )
    assert all(code != web for code, _ in mails), "Web's subscriber hears nothing of API"
    assert entries(rt, outbox.Kind.WEBHOOK) == [
        (hook, "incident.opened"),
        (hook, "incident.resolved"),
    ]
    # Expanded once: running again writes nothing more.
    assert run_pending(rt, [])["fanout"] == 0
    assert len(entries(rt, outbox.Kind.EMAIL)) == 4


def test_only_active_subscribers_are_told(rt: Runtime, clock: FakeClock) -> None:
    live = subscriber(rt, "live@example.com")
    subscriber(rt, "new@example.com", confirmed=False)
    subscriber(rt, "gone@example.com", unsubscribed_at=clock.now)
    subscriber(rt, "bounced@example.com", bounced_at=clock.now)
    subscriber(rt, "quiet@example.com", kind=store.WEBHOOK, quarantined_at=clock.now)
    ok(rt, "/incident open Errors --components API=major")
    run_pending(rt, [])
    assert entries(rt, outbox.Kind.EMAIL) == [(live, "incident.opened")]
    assert entries(rt, outbox.Kind.WEBHOOK) == []


def test_component_changes_go_to_webhooks_only(rt: Runtime) -> None:
    subscriber(rt, "mail@example.com")
    hook = subscriber(rt, "hook@example.com", kind=store.WEBHOOK)
    other = subscriber(rt, "web@example.com", kind=store.WEBHOOK, follows=("Web",))
    ok(rt, "/component set API major")
    with rt.factory() as session:
        (fan,) = session.scalars(select(OutboxEntry).where(OutboxEntry.kind == "fanout"))
        api = session.scalars(select(Component).where(Component.name == "API")).one()
        assert fan.payload["component_id"] == api.id
        assert (fan.payload["old_status"], fan.payload["new_status"]) == (
            "operational",
            "major_outage",
        )
        assert isinstance(fan.payload["change_id"], int)
    run_pending(rt, [])
    assert entries(rt, outbox.Kind.WEBHOOK) == [(hook, "component.changed")]
    assert entries(rt, outbox.Kind.EMAIL) == []
    assert other not in {c for c, _ in entries(rt, outbox.Kind.WEBHOOK)}


@pytest.mark.parametrize(
    "lines",
    [
        ["/incident open Quiet --silent --components API=major"],
        ["/incident open Loud", "/incident update 1 --silent -- shh"],
        ["/incident open Loud", "/incident resolve 1 --silent"],
        ["/incident open Loud", "/incident resolve 1", "/incident reopen 1 --silent"],
        ["/maintenance schedule Db --start 'in 2h' --end 'in 3h' --silent"],
        ["/maintenance schedule Db --start 'in 2h' --end 'in 3h'", "/maintenance start 1 --silent"],
        [
            "/maintenance schedule Db --start 'in 2h' --end 'in 3h'",
            "/maintenance cancel 1 --silent",
        ],
    ],
)
def test_silent_tells_nobody(rt: Runtime, lines: list[str]) -> None:
    subscriber(rt, "all@example.com")
    for line in lines[:-1]:
        ok(rt, line)
    before = (entries(rt, outbox.Kind.FANOUT), entries(rt, outbox.Kind.SLACK))
    reply = ok(rt, lines[-1])
    assert "Not announced" in reply and "subscribers are told" in reply
    # Neither the Slack channels nor subscribers: no entry of any kind was added.
    assert (entries(rt, outbox.Kind.FANOUT), entries(rt, outbox.Kind.SLACK)) == before
    with rt.factory() as session:
        last = session.scalars(select(OutboxEntry).order_by(OutboxEntry.id.desc())).first()
        update = session.scalars(select(IncidentUpdate).order_by(IncidentUpdate.id.desc())).first()
        assert update is not None and update.deliver_notifications is False
        assert last is None or last.update_id != update.id


def test_edits_and_nudges_are_not_fanned_out(rt: Runtime) -> None:
    ok(rt, "/incident open Typo")
    ok(rt, "/incident edit 1 --title Fixed")
    assert [e for _, e in entries(rt, outbox.Kind.FANOUT)] == ["incident.opened"]


def test_racing_deliverers_expand_exactly_once(rt: Runtime, clock: FakeClock) -> None:
    codes = {subscriber(rt, f"s{n}@example.com") for n in range(30)}
    for n in range(5):
        ok(rt, f"/incident open Errors {n}")
    workers = [FanOut(rt.factory, clock=clock, page=7) for _ in range(3)]
    start = threading.Barrier(len(workers))

    def drain(worker: FanOut) -> None:
        start.wait()
        for _ in range(10):
            worker.deliver_pending(limit=2)

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with rt.factory() as session:
        mails = session.execute(
            select(OutboxEntry.channel, OutboxEntry.incident_id).where(OutboxEntry.kind == "email")
        ).all()
        fanned = session.scalars(
            select(OutboxEntry.delivered_at).where(OutboxEntry.kind == "fanout")
        ).all()
    assert len(mails) == 30 * 5 and len(set(mails)) == len(mails), (
        "each (subscriber, incident) once"
    )
    assert {c for c, _ in mails} == codes
    assert len(fanned) == 5 and all(fanned)


def test_a_lost_lease_writes_nothing(rt: Runtime, clock: FakeClock) -> None:
    subscriber(rt, "a@example.com")
    ok(rt, "/incident open Errors")
    slow = FanOut(rt.factory, clock=clock, lease=timedelta(seconds=30))
    with rt.factory() as session:
        (head,) = outbox.due(session, now=clock.now, limit=5, kind=outbox.Kind.FANOUT)
    token = slow.claim(head)
    assert token is not None
    clock.advance(seconds=31)  # its lease runs out; another deliverer takes the entry
    fast = FanOut(rt.factory, clock=clock)
    with rt.factory() as session:
        (again,) = outbox.due(session, now=clock.now, limit=5, kind=outbox.Kind.FANOUT)
    other = fast.claim(again)
    assert other is not None
    assert slow.expand(head.id, token) is False
    assert entries(rt, outbox.Kind.EMAIL) == [], "the deliverer that lost its lease wrote nothing"
    assert fast.expand(again.id, other) is True
    assert len(entries(rt, outbox.Kind.EMAIL)) == 1


def test_ten_thousand_subscribers_expand_a_page_at_a_time(
    rt: Runtime, engine: Engine, clock: FakeClock
) -> None:
    total = 10_000
    with rt.factory.begin() as session:
        session.execute(
            insert(Subscriber),
            [
                {
                    "kind": "email",
                    "code": f"s{n:011d}",
                    "email": f"s{n}@example.com",
                    "address_key": f"s{n}@example.com",
                    "token": f"t{n:040d}",
                    "source": "import",
                    "created_at": clock.now,
                    "confirmed_at": clock.now,
                }
                for n in range(total)
            ],
        )
    ok(rt, "/incident open Big")
    pages: list[str] = []
    inserts: list[int] = []

    def count(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if (
            statement.lstrip().upper().startswith("SELECT")
            and "ORDER BY subscribers.id" in statement
        ):
            pages.append(statement)
        if statement.lstrip().upper().startswith("INSERT INTO OUTBOX"):
            inserts.append(len(params) if many and isinstance(params, list) else 1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert FanOut(rt.factory, clock=clock).deliver_pending() == 1
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(entries(rt, outbox.Kind.EMAIL)) == total
    # Read 1,000 at a time (ten full pages and the empty one that ends it), never all at once
    # (besides one question: is anyone subscribed at all?).
    assert len(pages) == total // 1000 + 1
    assert inserts and max(inserts) <= 1000


def test_the_demos_history_is_not_news_to_subscribers(runtime: Runtime) -> None:
    """statusbot's own loaders write history: nobody is mailed about last week's incidents."""
    from bot.demo import load_demo

    subscriber(runtime, "everything@example.com")
    load_demo(runtime)
    assert entries(runtime, outbox.Kind.FANOUT) == []
    assert run_pending(runtime, []) == {"fanout": 0}
    ok(runtime, "/incident open Checkout errors -- Looking into it.")
    assert [e for _, e in entries(runtime, outbox.Kind.FANOUT)] == ["incident.opened"]


@contextmanager
def listening(engine: Engine, name: str) -> Iterator[list[tuple[Any, ...]]]:
    """The arguments of every `name` event the engine fires inside the block."""
    calls: list[tuple[Any, ...]] = []

    def heard(*args: Any) -> None:
        calls.append(args)

    event.listen(engine, name, heard)
    try:
        yield calls
    finally:
        event.remove(engine, name, heard)


def test_a_pass_expands_its_entries_in_one_transaction(
    rt: Runtime, engine: Engine, clock: FakeClock
) -> None:
    """Several changes waiting (a busy minute): one commit for the pass, not two each."""
    subscriber(rt, "a@example.com")
    for n in range(4):
        ok(rt, f"/incident open Errors {n}")
    with listening(engine, "commit") as commits:
        assert FanOut(rt.factory, clock=clock).deliver_pending() == 4
    assert len(commits) == 1
    assert len(entries(rt, outbox.Kind.EMAIL)) == 4


def test_one_bad_entry_does_not_hold_back_the_others(rt: Runtime, clock: FakeClock) -> None:
    subscriber(rt, "a@example.com")
    ok(rt, "/incident open Errors 1")
    with rt.factory.begin() as session:  # a notification naming a component id that isn't one
        outbox.enqueue(
            session,
            channels=[outbox.FANOUT_LINE],
            event="incident.updated",
            at=clock.now,
            payload={"components": ["not-an-id"]},
            kind=outbox.Kind.FANOUT,
        )
    ok(rt, "/incident open Errors 2")
    assert FanOut(rt.factory, clock=clock).deliver_pending() == 2
    assert len(entries(rt, outbox.Kind.EMAIL)) == 2
    with rt.factory() as session:
        waiting = session.scalars(
            select(OutboxEntry.payload).where(
                OutboxEntry.kind == outbox.Kind.FANOUT, OutboxEntry.delivered_at.is_(None)
            )
        ).all()
    assert waiting == [{"components": ["not-an-id"]}], "the bad one waits to be tried again"


def test_with_nobody_subscribed_a_pass_reads_no_recipients(
    rt: Runtime, engine: Engine, clock: FakeClock
) -> None:
    for n in range(3):
        ok(rt, f"/incident open Errors {n}")
    with listening(engine, "before_cursor_execute") as calls:
        assert FanOut(rt.factory, clock=clock).deliver_pending() == 3
    reads = [statement for _, _, statement, *_ in calls if "FROM subscribers" in statement]
    assert len(reads) == 1, "one question for the pass, not a recipients query per entry"
    assert entries(rt, outbox.Kind.EMAIL) == []
    subscriber(rt, "late@example.com")  # news from now on reaches them
    ok(rt, "/incident open Errors 3")
    assert FanOut(rt.factory, clock=clock).deliver_pending() == 1
    (mail,) = entries(rt, outbox.Kind.EMAIL)
    assert mail[1] == "incident.opened"
