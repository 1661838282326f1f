"""Subscribers (SPEC §9): who is told, about which components, and their state.

Rules that are facts about the data live here: an address is unique among live
subscriptions of its kind; only active subscribers (confirmed, not unsubscribed,
quarantined or bouncing) receive notifications; a subscriber with no components
follows everything. The use cases in commands/subscribers.py decide who may do
what and write the audit log.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, exists, func, insert, or_, select
from sqlalchemy.orm import Session

from storage.models import Component, Subscriber, SubscriberComponent

EMAIL = "email"
WEBHOOK = "webhook"
KINDS = (EMAIL, WEBHOOK)
SOURCES = ("page", "slack", "cli", "api", "import")

TOKEN_BYTES = 24  # 192 bits, above SPEC §9's 128
SECRET_BYTES = 24  # a webhook's signing key, as Standard Webhooks suggests (24 to 64)


@dataclass(frozen=True, slots=True)
class SubscriberView:
    """A subscriber as the v1 API shows it: never its token or secret."""

    code: str
    kind: str
    email: str
    endpoint: str | None
    components: tuple[str, ...]  # the codes of the components it follows
    created_at: datetime
    confirmed_at: datetime | None
    quarantined_at: datetime | None
    unsubscribed_at: datetime | None


def view_of(subscriber: Subscriber) -> SubscriberView:
    """A subscriber as frozen values."""
    return SubscriberView(
        code=subscriber.code,
        kind=subscriber.kind,
        email=subscriber.email,
        endpoint=subscriber.endpoint,
        components=tuple(c.code for c in subscriber.components),
        created_at=subscriber.created_at,
        confirmed_at=subscriber.confirmed_at,
        quarantined_at=subscriber.quarantined_at,
        unsubscribed_at=subscriber.unsubscribed_at,
    )


def new_token() -> str:
    """A random, unguessable token for a subscriber's links (URL-safe)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_secret() -> str:
    """A webhook signing secret in Standard Webhooks' `whsec_` + base64 form."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def address_key(kind: str, address: str) -> str:
    """What uniqueness is judged on: an email address in lower case, or the URL as given."""
    return address.strip().lower() if kind == EMAIL else address.strip()


def add(
    session: Session,
    *,
    kind: str,
    email: str,
    endpoint: str | None = None,
    components: Sequence[Component] = (),
    source: str,
    now: datetime,
    confirmed: bool = False,
    external_id: str | None = None,
) -> Subscriber:
    """A new, live subscriber (unconfirmed unless `confirmed`), flushed so it has its ids."""
    if kind not in KINDS:
        raise ValueError(f"unknown subscriber kind {kind!r}")
    if source not in SOURCES:
        raise ValueError(f"unknown subscriber source {source!r}")
    subscriber = Subscriber(
        kind=kind,
        email=email.strip(),
        endpoint=endpoint.strip() if endpoint else None,
        address_key=address_key(kind, endpoint if kind == WEBHOOK and endpoint else email),
        secret=new_secret() if kind == WEBHOOK else None,
        token=new_token(),
        source=source,
        created_at=now,
        confirmed_at=now if confirmed else None,
        external_id=external_id,
    )
    subscriber.components = list(components)
    session.add(subscriber)
    session.flush()
    return subscriber


def find_live(session: Session, *, kind: str, address: str) -> Subscriber | None:
    """The live (not unsubscribed) subscription of this address or URL, if any."""
    stmt = select(Subscriber).where(
        Subscriber.kind == kind,
        Subscriber.address_key == address_key(kind, address),
        Subscriber.unsubscribed_at.is_(None),
    )
    return session.scalars(stmt).first()


def by_code(session: Session, code: str) -> Subscriber | None:
    """A live subscriber by its public id."""
    stmt = select(Subscriber).where(Subscriber.code == code, Subscriber.unsubscribed_at.is_(None))
    return session.scalars(stmt).first()


def by_token(session: Session, token: str) -> Subscriber | None:
    """The subscriber behind a link's token, or None; the token is compared in constant time.

    The index finds the candidate; the final comparison is hmac.compare_digest, so
    how long a wrong token takes to refuse says nothing about the right one.
    """
    if not token or len(token) > 64:
        return None
    found = session.scalars(select(Subscriber).where(Subscriber.token == token)).first()
    if found is None or not hmac.compare_digest(found.token.encode(), token.encode()):
        return None
    return found


def confirm(subscriber: Subscriber, *, now: datetime) -> bool:
    """Confirm (double opt-in); whether it was unconfirmed. Confirming twice is harmless."""
    if subscriber.confirmed_at is not None:
        return False
    subscriber.confirmed_at = now
    return True


def unsubscribe(subscriber: Subscriber, *, now: datetime) -> bool:
    """Unsubscribe; whether it was subscribed. Idempotent."""
    if subscriber.unsubscribed_at is not None:
        return False
    subscriber.unsubscribed_at = now
    return True


def set_components(
    session: Session, subscriber: Subscriber, components: Sequence[Component]
) -> None:
    """Follow exactly these components (none: everything)."""
    subscriber.components = list(components)
    session.flush()


def live(session: Session, *, kind: str | None = None) -> list[Subscriber]:
    """Every live subscriber (confirmed or not), oldest first."""
    stmt = select(Subscriber).where(Subscriber.unsubscribed_at.is_(None))
    if kind is not None:
        stmt = stmt.where(Subscriber.kind == kind)
    return list(session.scalars(stmt.order_by(Subscriber.id)))


def count_active(session: Session) -> dict[str, int]:
    """Active (confirmed, reachable) subscribers by kind, every kind present."""
    stmt = select(Subscriber.kind, func.count()).where(*_active()).group_by(Subscriber.kind)
    counts = {kind: 0 for kind in KINDS}
    counts.update({str(kind): int(n) for kind, n in session.execute(stmt)})
    return counts


@dataclass(frozen=True, slots=True)
class Recipient:
    """One subscriber a notification goes to: what a deliverer's line is named by."""

    id: int
    code: str
    kind: str


def recipients(
    session: Session,
    *,
    component_ids: Collection[int] | None,
    kinds: Collection[str] = KINDS,
    after_id: int = 0,
    limit: int = 1000,
) -> list[Recipient]:
    """Active subscribers of `kinds` that follow any of `component_ids` (or everything),
    in id order after `after_id`: one page of a fan-out, so memory stays flat however
    many subscribers there are. `component_ids=None` means the notification concerns
    the whole page (everyone gets it)."""
    stmt = (
        select(Subscriber.id, Subscriber.code, Subscriber.kind)
        .where(*_active(), Subscriber.kind.in_(list(kinds)), Subscriber.id > after_id)
        .order_by(Subscriber.id)
        .limit(limit)
    )
    if component_ids is not None:
        follows_any = exists().where(SubscriberComponent.subscriber_id == Subscriber.id)
        follows_these = exists().where(
            SubscriberComponent.subscriber_id == Subscriber.id,
            SubscriberComponent.component_id.in_(list(component_ids)),
        )
        stmt = stmt.where(or_(~follows_any, follows_these))
    return [Recipient(int(i), str(c), str(k)) for i, c, k in session.execute(stmt)]


def anyone_active(session: Session) -> bool:
    """Whether any subscriber at all is told anything now (a fan-out's first question)."""
    return bool(session.scalar(_ANYONE_ACTIVE))


def iter_recipients(
    session: Session,
    *,
    component_ids: Collection[int] | None,
    kinds: Collection[str] = KINDS,
    page: int = 1000,
) -> Iterator[Recipient]:
    """Every recipient, a page at a time."""
    after = 0
    while True:
        batch = recipients(
            session, component_ids=component_ids, kinds=kinds, after_id=after, limit=page
        )
        yield from batch
        if len(batch) < page:
            return
        after = batch[-1].id


def purge_unconfirmed(session: Session, *, created_before: datetime) -> int:
    """Forget sign-ups never confirmed (their links expired); how many."""
    stale = and_(
        Subscriber.confirmed_at.is_(None),
        Subscriber.unsubscribed_at.is_(None),
        Subscriber.created_at < created_before,
    )
    ids = list(session.scalars(select(Subscriber.id).where(stale)))
    if not ids:
        return 0
    session.execute(delete(SubscriberComponent).where(SubscriberComponent.subscriber_id.in_(ids)))
    session.execute(delete(Subscriber).where(Subscriber.id.in_(ids)))
    return len(ids)


def bulk_follow(session: Session, subscriber_id: int, component_ids: Collection[int]) -> None:
    """Add follows in one statement (imports); the caller knows they are new."""
    if component_ids:
        session.execute(
            insert(SubscriberComponent),
            [{"subscriber_id": subscriber_id, "component_id": c} for c in component_ids],
        )


def _active() -> tuple[ColumnElement[bool], ...]:
    """Confirmed, and neither unsubscribed, quarantined nor bouncing."""
    return (
        Subscriber.confirmed_at.is_not(None),
        Subscriber.unsubscribed_at.is_(None),
        Subscriber.quarantined_at.is_(None),
        Subscriber.bounced_at.is_(None),
    )


# Built once: every fan-out pass asks, and a new statement has its cache key worked out.
_ANYONE_ACTIVE = select(exists().where(*_active()))


def is_active(subscriber: Subscriber) -> bool:
    """Whether it is sent notifications: confirmed, and neither unsubscribed, quarantined
    nor bouncing (the same rule as `_active`, for a row in hand)."""
    return (
        subscriber.confirmed_at is not None
        and subscriber.unsubscribed_at is None
        and subscriber.quarantined_at is None
        and subscriber.bounced_at is None
    )


def quarantine(subscriber: Subscriber, *, now: datetime, error: str) -> bool:
    """Stop sending to a webhook that kept failing; whether it was not quarantined yet."""
    if subscriber.quarantined_at is not None:
        return False
    subscriber.quarantined_at = now
    subscriber.last_error = error
    return True
