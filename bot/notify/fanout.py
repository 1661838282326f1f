"""The fan-out: one notification in, one outbox entry per subscriber told of it out.

A command writes ONE fan-out entry with its change (commands.common.fan_out), so
its transaction does not grow with the number of subscribers. This deliverer
claims that entry with a lease (storage.outbox.claim, as every deliverer does)
and, in the same transaction, marks it delivered while the lease is still ours
and writes an EMAIL or WEBHOOK entry per recipient, a page of 1,000 at a time
(a pass does its entries in one transaction, up to a page of recipients). Either
all of a notification's entries are written and the fan-out entry is done, or
none are and it is not: a deliverer that lost its lease writes nothing, so each
subscriber gets each notification exactly once however many deliverers race.

Which subscribers: active ones (confirmed, not unsubscribed, quarantined or
bouncing) that follow an affected component or everything; component changes
go to webhooks only (SPEC §9).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.notify.worker import LEASE
from bot.runtime import Clock, system_clock
from storage import outbox, subscribers
from storage.db import transaction
from storage.models import OutboxEntry

log = logging.getLogger(__name__)

PAGE = 1000  # recipients read and written per statement: memory stays flat
# Told to webhooks only: an email per component flicker would be noise.
WEBHOOK_ONLY = frozenset({"component.changed"})
KIND_OF = {subscribers.EMAIL: outbox.Kind.EMAIL, subscribers.WEBHOOK: outbox.Kind.WEBHOOK}


class FanOut:
    """Expands fan-out entries; safe to run in many threads and processes at once.

    Fits bot.delivery_worker.DeliveryWorker (`deliver_pending`, `paused`, `quiet`).
    `on_expanded` is called after a pass that wrote recipients' entries (to poke
    the email and webhook workers).
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        clock: Clock = system_clock,
        lease: timedelta = LEASE,
        page: int = PAGE,
        on_expanded: Callable[[], object] | None = None,
    ) -> None:
        self.factory = factory
        self.clock = clock
        self.lease = lease
        self.page = page
        self.on_expanded = on_expanded
        self._quiet = False

    def paused(self) -> bool:
        """Never paused."""
        return False

    def quiet(self) -> bool:
        """Whether the last pass told nobody: the entries it did were marked done because
        nobody is subscribed, so the next pass may wait for more of them."""
        return self._quiet

    def deliver_pending(self, limit: int = 50) -> int:
        """Expand up to `limit` due fan-out entries; how many were expanded.

        The entries of a pass are claimed and expanded in one transaction (two
        statements each, one commit for all), not two transactions each: the
        expansion touches nothing but the database, so the transaction alone makes
        it all-or-nothing. A pass commits early once it has written a page of
        recipients, so a large fan-out never holds the write lock for several.
        """
        now = self.clock()
        with self.factory() as session:
            heads = outbox.due(session, now=now, limit=limit, kind=outbox.Kind.FANOUT)
        done = told = 0
        nobody = False
        while heads:
            taken: list[outbox.Head] = []
            try:
                with transaction(self.factory) as session:
                    expanded = written = 0
                    # Asked once a pass: a page nobody follows yet expands to nothing,
                    # so its entries are all marked done at once.
                    if not subscribers.anyone_active(session):
                        taken, heads = heads, []
                        expanded = _mark_all(session, [h.id for h in taken], now)
                        nobody = True
                    while heads and written < self.page:
                        head = heads.pop(0)
                        taken.append(head)
                        token = self._claim_in(session, head, now)
                        count = (
                            None if token is None else self._expand_in(session, head.id, token, now)
                        )
                        if count is not None:
                            expanded += 1
                            written += count
            except Exception:
                if len(taken) == 1:
                    raise
                # One bad entry must not hold back the others: each alone, then.
                log.exception("a batch of %d fan-out entries failed; one at a time", len(taken))
                expanded = sum(self._alone(head) for head in taken)
                written = 0
                told += expanded  # they may have written recipients: poke the senders
            done += expanded
            told += written
            if written >= self.page:
                self._refresh_statistics()
        if told and self.on_expanded is not None:
            self.on_expanded()
        self._quiet = nobody and not told
        return done

    def _alone(self, head: outbox.Head) -> bool:
        """One entry claimed and expanded in transactions of its own; whether it was."""
        try:
            token = self.claim(head)
            return token is not None and self.expand(head.id, token)
        except Exception:
            log.exception("fan-out entry %s failed; it is tried again later", head.id)
            return False

    def claim(self, head: outbox.Head) -> str | None:
        """Take one entry under a lease; the lease's token, or None if another has it."""
        with transaction(self.factory) as session:
            return self._claim_in(session, head, self.clock())

    def expand(self, entry_id: int, token: str) -> bool:
        """Write the entry's recipients and mark it delivered, in one transaction, if the
        lease `token` is still ours; whether it was (a lost lease writes nothing)."""
        with transaction(self.factory) as session:
            written = self._expand_in(session, entry_id, token, self.clock())
        if written is not None and written >= self.page:
            self._refresh_statistics()
        return written is not None

    def _claim_in(self, session: Session, head: outbox.Head, now: datetime) -> str | None:
        token = secrets.token_hex(16)
        won = outbox.claim(
            session, head, now=now, until=now + self.lease, token=token, kind=outbox.Kind.FANOUT
        )
        return token if won else None

    def _expand_in(self, session: Session, entry_id: int, token: str, now: datetime) -> int | None:
        """expand()'s work in the caller's transaction; the recipients written, or None if
        the lease was lost."""
        # Marking first takes the row's lock: a deliverer that took the entry over
        # after our lease ran out makes this match nothing, and one trying now waits
        # for our commit and then finds it delivered.
        kept = session.execute(_MARK, {"m_id": entry_id, "m_token": token, "m_now": now})
        if int(getattr(kept, "rowcount", 0) or 0) != 1:
            log.error("fan-out entry %s was taken over by another deliverer", entry_id)
            return None
        entry = session.execute(_ENTRY, {"e_id": entry_id}).one()
        written = self._write(session, entry.event, entry, now)
        log.info("fan-out entry %s (%s): %d recipients", entry_id, entry.event, written)
        return written

    def _refresh_statistics(self) -> None:
        """After a large fan-out, so the senders' queries are planned for the entries now
        waiting; the fan-out is done whether or not this works (autovacuum does it later)."""
        try:
            with transaction(self.factory) as session:
                outbox.refresh_statistics(session)
        except SQLAlchemyError:
            log.warning("Could not refresh the outbox's statistics", exc_info=True)

    def _write(self, session: Session, event: str, entry: Any, now: datetime) -> int:
        payload = dict(entry.payload or {})
        kinds = (subscribers.WEBHOOK,) if event in WEBHOOK_ONLY else subscribers.KINDS
        written = 0
        batch: list[dict[str, Any]] = []
        for recipient in subscribers.iter_recipients(
            session, component_ids=affected(payload), kinds=kinds, page=self.page
        ):
            batch.append(
                {
                    "kind": KIND_OF[recipient.kind],
                    "channel": recipient.code,
                    "event": event,
                    "created_at": now,
                    "next_attempt_at": now,
                    "incident_id": entry.incident_id,
                    "update_id": entry.update_id,
                    "payload": payload,
                    "attempts": 0,
                }
            )
            if len(batch) >= self.page:
                written += _insert(session, batch)
                batch = []
        return written + _insert(session, batch)


# Built once with bound parameters (as storage.outbox's claim is): a busy minute's
# hundreds of expansions reuse the compiled statements.
_MARK = (
    update(OutboxEntry)
    .where(
        OutboxEntry.id == bindparam("m_id"),
        OutboxEntry.claimed_by == bindparam("m_token"),
        OutboxEntry.delivered_at.is_(None),
    )
    .values(
        delivered_at=bindparam("m_now", type_=OutboxEntry.delivered_at.type),
        claimed_by=None,
        claimed_until=None,
        last_error=None,
    )
    .execution_options(synchronize_session=False)
)
_ENTRY = select(
    OutboxEntry.event, OutboxEntry.incident_id, OutboxEntry.update_id, OutboxEntry.payload
).where(OutboxEntry.id == bindparam("e_id"))


_NOW = bindparam("a_now", type_=OutboxEntry.delivered_at.type)
_MARK_ALL = (
    update(OutboxEntry)
    .where(
        OutboxEntry.id.in_(bindparam("a_ids", expanding=True)),
        OutboxEntry.delivered_at.is_(None),
        or_(OutboxEntry.claimed_until.is_(None), OutboxEntry.claimed_until < _NOW),
    )
    .values(delivered_at=_NOW, claimed_by=None, claimed_until=None)
    .returning(OutboxEntry.id)
    .execution_options(synchronize_session=False)
)


def _mark_all(session: Session, ids: list[int], now: datetime) -> int:
    """Mark due fan-out entries done with no recipients (nobody is subscribed), unless
    another deliverer holds or has done one; how many were marked. The ids are heads of
    their lines (outbox.due), so nothing ahead of them waits."""
    marked = session.execute(_MARK_ALL, {"a_ids": ids, "a_now": now}).all()
    log.info("fan-out: nobody is subscribed; %d entries done", len(marked))
    return len(marked)


def affected(payload: dict[str, Any]) -> list[int]:
    """The component ids a notification concerns (none: only subscribers of everything)."""
    if "component_id" in payload:
        return [int(payload["component_id"])]
    return [int(c) for c in payload.get("components", [])]


def _insert(session: Session, rows: list[dict[str, Any]]) -> int:
    if rows:
        session.execute(insert(OutboxEntry), rows)
    return len(rows)
