"""The fan-out: one notification in, one outbox entry per subscriber told of it out.

A command writes ONE fan-out entry with its change (commands.common.fan_out), so
its transaction does not grow with the number of subscribers. This deliverer
claims that entry with a lease (storage.outbox.claim, as every deliverer does),
then in ONE transaction marks it delivered, while the lease is still ours, and
writes an EMAIL or WEBHOOK entry per recipient, a page of 1,000 at a time. Either
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

from sqlalchemy import insert, select, update
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

    Fits bot.slack.delivery.DeliveryWorker (`deliver_pending`, `paused`).
    `on_expanded` is called after a pass that wrote entries (to poke the email
    and webhook workers).
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

    def paused(self) -> bool:
        """Never paused."""
        return False

    def deliver_pending(self, limit: int = 50) -> int:
        """Expand up to `limit` due fan-out entries; how many were expanded."""
        now = self.clock()
        with self.factory() as session:
            heads = outbox.due(session, now=now, limit=limit, kind=outbox.Kind.FANOUT)
        done = 0
        for head in heads:
            token = self.claim(head)
            if token is not None and self.expand(head.id, token):
                done += 1
        if done and self.on_expanded is not None:
            self.on_expanded()
        return done

    def claim(self, head: outbox.Head) -> str | None:
        """Take one entry under a lease; the lease's token, or None if another has it."""
        token = secrets.token_hex(16)
        now = self.clock()
        with transaction(self.factory) as session:
            won = outbox.claim(
                session, head, now=now, until=now + self.lease, token=token, kind=outbox.Kind.FANOUT
            )
        return token if won else None

    def expand(self, entry_id: int, token: str) -> bool:
        """Write the entry's recipients and mark it delivered, in one transaction, if the
        lease `token` is still ours; whether it was (a lost lease writes nothing)."""
        now = self.clock()
        with transaction(self.factory) as session:
            # Marking first takes the row's lock: a deliverer that took the entry over
            # after our lease ran out makes this match nothing, and one trying now waits
            # for our commit and then finds it delivered.
            kept = session.execute(
                update(OutboxEntry)
                .where(
                    OutboxEntry.id == entry_id,
                    OutboxEntry.claimed_by == token,
                    OutboxEntry.delivered_at.is_(None),
                )
                .values(delivered_at=now, claimed_by=None, claimed_until=None, last_error=None)
                .execution_options(synchronize_session=False)
            )
            if int(getattr(kept, "rowcount", 0) or 0) != 1:
                log.error("fan-out entry %s was taken over by another deliverer", entry_id)
                return False
            entry = session.execute(
                select(
                    OutboxEntry.event,
                    OutboxEntry.incident_id,
                    OutboxEntry.update_id,
                    OutboxEntry.payload,
                ).where(OutboxEntry.id == entry_id)
            ).one()
            written = self._write(session, entry.event, entry, now)
        log.info("fan-out entry %s (%s): %d recipients", entry_id, entry.event, written)
        if written >= self.page:
            self._refresh_statistics()
        return True

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


def affected(payload: dict[str, Any]) -> list[int]:
    """The component ids a notification concerns (none: only subscribers of everything)."""
    if "component_id" in payload:
        return [int(payload["component_id"])]
    return [int(c) for c in payload.get("components", [])]


def _insert(session: Session, rows: list[dict[str, Any]]) -> int:
    if rows:
        session.execute(insert(OutboxEntry), rows)
    return len(rows)
