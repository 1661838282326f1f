"""The outbox's lines: which entry may go next, claims, and the purge, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from storage import outbox
from storage.models import Incident, OutboxEntry

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def add(session: Session, channel: str, incident: Incident | None, **values: object) -> int:
    entry = OutboxEntry(
        channel=channel,
        event="incident.updated" if incident else "component.changed",
        incident_id=incident.id if incident else None,
        created_at=NOW,
        payload={},
        **{"next_attempt_at": NOW, **values},
    )
    session.add(entry)
    session.flush()
    return entry.id


def incident(session: Session, number: int) -> Incident:
    found = Incident(
        number=number,
        kind="incident",
        title=f"#{number}",
        status="investigating",
        impact="minor",
        created_by="U1",
        created_at=NOW,
        updated_at=NOW,
        started_at=NOW,
    )
    session.add(found)
    session.flush()
    return found


def due_ids(session: Session, now: datetime = NOW) -> list[int]:
    return [head.id for head in outbox.due(session, now=now, limit=50)]


def test_only_the_head_of_each_line_is_due(engine: Engine) -> None:
    with Session(engine) as s:
        one, two = incident(s, 1), incident(s, 2)
        a1 = add(s, "C1", one)
        add(s, "C1", one)  # behind a1
        b1 = add(s, "C2", one)  # another channel: a line of its own
        c1 = add(s, "C1", two)
        p1 = add(s, "C1", None)  # component changes: one line per channel
        add(s, "C1", None)
        assert due_ids(s) == [a1, b1, c1, p1]


def test_failed_and_delivered_entries_hold_nothing_back_but_a_retry_does(
    engine: Engine,
) -> None:
    with Session(engine) as s:
        one, two, three = incident(s, 1), incident(s, 2), incident(s, 3)
        add(s, "C1", one, failed_at=NOW)
        after_failed = add(s, "C1", one)
        add(s, "C1", two, delivered_at=NOW)
        after_delivered = add(s, "C1", two)
        retry = add(s, "C1", three, attempts=1, next_attempt_at=NOW + timedelta(seconds=30))
        add(s, "C1", three)  # waits for the retry, however late it is
        assert due_ids(s) == [after_failed, after_delivered]
        assert due_ids(s, NOW + timedelta(seconds=31)) == [after_failed, after_delivered, retry]


def test_a_claim_takes_a_head_once_and_never_an_entry_behind_one(engine: Engine) -> None:
    with Session(engine) as s:
        one = incident(s, 1)
        first, second = add(s, "C1", one), add(s, "C1", one)
        plain = add(s, "C1", None)
        later = add(s, "C1", None)
        until = NOW + timedelta(minutes=2)

        def claim(entry_id: int, channel: str, incident_id: int | None, token: str) -> bool:
            head = outbox.Head(entry_id, channel, incident_id)
            return outbox.claim(s, head, now=NOW, until=until, token=token)

        assert not claim(second, "C1", one.id, "a" * 32)  # first is ahead of it
        assert not claim(later, "C1", None, "a" * 32)  # plain is ahead of it
        assert claim(first, "C1", one.id, "a" * 32)
        assert not claim(first, "C1", one.id, "b" * 32)  # leased to a…
        assert claim(plain, "C1", None, "b" * 32)
        assert due_ids(s) == []  # both heads are leased
        assert due_ids(s, until + timedelta(seconds=1)) == [first, plain]  # leases ran out


def test_a_batch_claim_takes_only_the_unleased_heads_of_their_lines(engine: Engine) -> None:
    with Session(engine) as s:
        one, two = incident(s, 1), incident(s, 2)
        first, second = add(s, "S1", one, kind="email"), add(s, "S1", one, kind="email")
        other_incident = add(s, "S1", two, kind="email")  # a line of its own
        plain, plain_later = add(s, "S2", None, kind="email"), add(s, "S2", None, kind="email")
        leased = add(s, "S3", one, kind="email", claimed_by="c" * 32, claimed_until=NOW + DAY)
        add(s, "S4", one, kind="email", failed_at=NOW)
        after_failed = add(s, "S4", one, kind="email")
        # The same subscriber's webhook line does not hold its email line back.
        add(s, "S5", one, kind="webhook")
        email_s5 = add(s, "S5", one, kind="email")
        asked = [first, second, other_incident, plain, plain_later, leased, after_failed, email_s5]
        lines = {e.id: e for e in s.scalars(select(OutboxEntry).where(OutboxEntry.id.in_(asked)))}
        heads = [outbox.Head(i, lines[i].channel, lines[i].incident_id) for i in asked]

        outbox.claim_many(
            s, heads, now=NOW, until=NOW + DAY, token="a" * 32, kind=outbox.Kind.EMAIL
        )

        s.expire_all()
        won = s.scalars(select(OutboxEntry.id).where(OutboxEntry.claimed_by == "a" * 32))
        assert sorted(won) == [first, other_incident, plain, after_failed, email_s5]


def test_refreshing_the_statistics_counts_a_fan_out_s_rows(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        s.add_all(
            OutboxEntry(channel=f"S{n}", event="e", created_at=NOW, next_attempt_at=NOW, payload={})
            for n in range(500)
        )
    with Session(engine) as s, s.begin():
        outbox.refresh_statistics(s)  # on SQLite: nothing to do, and no error
    if engine.dialect.name == "postgresql":
        with Session(engine) as s:
            estimated = s.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = 'outbox'::regclass")
            ).scalar_one()
            assert estimated == 500


def test_purge_deletes_only_entries_delivered_before_the_cutoff(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        one = incident(s, 1)
        add(s, "C1", one, delivered_at=NOW - timedelta(days=31))
        kept = [
            add(s, "C1", one, delivered_at=NOW - timedelta(days=29)),
            add(s, "C1", one, failed_at=NOW - timedelta(days=90)),
            add(s, "C1", one),
        ]
        assert outbox.purge_delivered(s, before=NOW - timedelta(days=30)) == 1
        assert list(s.scalars(select(OutboxEntry.id).order_by(OutboxEntry.id))) == kept
