"""SQLAlchemy 2 models: everything statusbot remembers.

Every datetime column is an aware UTC datetime (`UTCDateTime`). Public ids that
Statuspage clients see (component and update ids) are random, stable strings,
so they never leak row counts and survive a database move.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_ALPHABET = string.ascii_lowercase + string.digits


def new_code() -> str:
    """A Statuspage-style public id: 12 random lowercase letters and digits."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


def utcnow() -> datetime:
    return datetime.now(UTC)


def partial_index(name: str, *columns: str, where: str, unique: bool = False) -> Index:
    """An index of the rows where `where` (SQL) holds, on SQLite and PostgreSQL alike.

    The condition goes to the dialect that creates the index, as it creates it
    (`metadata.create_all`; the migrations name it themselves). Given as
    `sqlite_where=` and `postgresql_where=`, it made SQLAlchemy load both dialects
    to check those arguments when these models load, in every process: the
    PostgreSQL dialect's modules alone were 60-70 ms of `statusbot render` on SQLite.
    """
    index = Index(name, *columns, unique=unique)

    def with_condition(target: Index, connection: Connection, **_: Any) -> None:
        target.dialect_options[connection.dialect.name]["where"] = text(where)

    event.listen(index, "before_create", with_condition)
    _PARTIAL.append((index, where))
    return index


_PARTIAL: list[tuple[Index, str]] = []


def spell_out_partial_indexes() -> None:
    """Give every partial index its condition for both dialects, as the models used to:
    for Alembic (storage/migrations/env.py), whose autogenerate writes a migration
    from these objects and never creates them, so would leave the condition out."""
    for index, where in _PARTIAL:
        for dialect in ("sqlite", "postgresql"):
            index.dialect_options[dialect]["where"] = text(where)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Counter(Base):
    """A named counter, bumped with one atomic UPDATE … RETURNING.

    Incidents and maintenances share the `incident` counter, so numbers are
    unique and gap-free under concurrent writers on SQLite and PostgreSQL.
    """

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class Group(Base):
    __tablename__ = "component_groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True, default=new_code)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    components: Mapped[list[Component]] = relationship(
        back_populates="group", order_by="Component.position"
    )


class Component(Base):
    __tablename__ = "components"
    __table_args__ = (
        # Names are unique among live components, case-insensitively; a removed
        # component keeps its history (and so its row) but frees its name.
        partial_index(
            "uq_components_live_name", "name_key", unique=True, where="removed_at IS NULL"
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True, default=new_code)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("component_groups.id"))
    showcase: Mapped[bool] = mapped_column(Boolean, default=True)
    only_show_if_degraded: Mapped[bool] = mapped_column(Boolean, default=False)
    start_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(30), default="operational")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    group: Mapped[Group | None] = relationship(back_populates="components")


class Incident(Base):
    """An incident or a maintenance: one shape, one number sequence."""

    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # incident | maintenance
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(30))
    impact: Mapped[str] = mapped_column(String(20))
    impact_override: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    monitoring_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scheduled_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    auto: Mapped[bool] = mapped_column(Boolean, default=True)
    # When a maintenance began, the states its components had, to restore.
    restore_states: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # Reminders already sent, so a job that runs twice (or in two processes) sends one.
    notice_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    nudged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    nudge_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A draft (SPEC §12): shown in Slack, marked, and nowhere public until published.
    # Its component states wait in `draft_components` ([[component id, state], ...])
    # and are applied when it is published; a discarded draft keeps its row (and number).
    draft: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    draft_components: Mapped[list[list[Any]] | None] = mapped_column(JSON)
    discarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The Slack message it was declared from (a permalink): shown in Slack, never public.
    source_link: Mapped[str | None] = mapped_column(Text)

    updates: Mapped[list[IncidentUpdate]] = relationship(
        back_populates="incident", order_by="IncidentUpdate.id", cascade="all, delete-orphan"
    )
    affected: Mapped[list[AffectedComponent]] = relationship(
        back_populates="incident", cascade="all, delete-orphan"
    )
    postmortem: Mapped[Postmortem | None] = relationship(uselist=False, viewonly=True)


class IncidentNote(Base):
    """An internal note (SPEC §12): posted in the announcement's thread, never public."""

    __tablename__ = "incident_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Postmortem(Base):
    """An incident's postmortem: a draft until published, Statuspage's `postmortem_*` fields."""

    __tablename__ = "postmortems"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), unique=True)
    body: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # `postmortem_body_last_updated_at`: when the text last changed.
    body_updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When subscribers were told (`postmortem_notified_subscribers`): once, ever.
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Template(Base):
    """A starting point for an incident (SPEC §12): title, status, component states, body."""

    __tablename__ = "templates"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True, default=new_code)
    name: Mapped[str] = mapped_column(String(100))
    name_key: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(30))
    # [[component id, state], ...]: ids, so a renamed component stays in the template.
    components: Mapped[list[list[Any]]] = mapped_column(JSON, default=list)
    body: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AffectedComponent(Base):
    """A component an incident or maintenance touches, in the order it was added."""

    __tablename__ = "affected_components"
    __table_args__ = (UniqueConstraint("incident_id", "component_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    component_id: Mapped[int] = mapped_column(ForeignKey("components.id"))

    incident: Mapped[Incident] = relationship(back_populates="affected")
    component: Mapped[Component] = relationship()


class IncidentUpdate(Base):
    __tablename__ = "incident_updates"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True, default=new_code)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    status: Mapped[str] = mapped_column(String(30))
    body: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(40))
    display_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deliver_notifications: Mapped[bool] = mapped_column(Boolean, default=True)

    incident: Mapped[Incident] = relationship(back_populates="updates")
    changes: Mapped[list[ComponentChange]] = relationship(
        back_populates="update", order_by="ComponentChange.id", cascade="all, delete-orphan"
    )


class ComponentChange(Base):
    """What an update did to a component: Statuspage's `affected_components`."""

    __tablename__ = "update_component_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    update_id: Mapped[int] = mapped_column(ForeignKey("incident_updates.id"), index=True)
    component_id: Mapped[int] = mapped_column(ForeignKey("components.id"))
    old_status: Mapped[str] = mapped_column(String(30))
    new_status: Mapped[str] = mapped_column(String(30))

    update: Mapped[IncidentUpdate] = relationship(back_populates="changes")
    component: Mapped[Component] = relationship()


class StatusChange(Base):
    """One entry of a component's history: uptime is computed from these."""

    __tablename__ = "component_status_history"
    __table_args__ = (Index("ix_history_component_at", "component_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    component_id: Mapped[int] = mapped_column(ForeignKey("components.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    old_status: Mapped[str | None] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(30))
    cause: Mapped[str] = mapped_column(String(20))  # incident | maintenance | manual
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    actor: Mapped[str] = mapped_column(String(40))


class Metric(Base):
    __tablename__ = "metrics"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True, default=new_code)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    unit: Mapped[str] = mapped_column(String(20), default="")
    description: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MetricPoint(Base):
    __tablename__ = "metric_points"
    __table_args__ = (Index("ix_metric_points_metric_at", "metric_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    metric_id: Mapped[int] = mapped_column(ForeignKey("metrics.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    value: Mapped[float] = mapped_column(Float)


class AuditEvent(Base):
    """Who did what, when, with the before and after: one row per change or refusal."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(200))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class OutboxEntry(Base):
    """A notification to deliver, written in the same transaction as its change.

    One row per event and channel; the transport marks it delivered. Rows of one
    incident are delivered in id order.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "delivered_at", "next_attempt_at"),
        # The entries still to send, by line (storage/outbox.py): finding the heads
        # of the lines and checking that nothing is ahead of an entry stay cheap
        # however many delivered entries the table holds.
        partial_index(
            "ix_outbox_line",
            "kind",
            "channel",
            "incident_id",
            "id",
            where="delivered_at IS NULL AND failed_at IS NULL",
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Which deliverer sends it (storage.outbox.Kind): a Slack message, a fan-out to
    # subscribers, an email or a webhook. Each kind's deliverer reads only its own.
    kind: Mapped[str] = mapped_column(String(10), default="slack", server_default="slack")
    # The line's name within its kind: a Slack channel id, or a subscriber's code.
    channel: Mapped[str] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(40))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    update_id: Mapped[int | None] = mapped_column(ForeignKey("incident_updates.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Given up on (a permanent Slack error, or too many attempts): no longer
    # pending, and no longer holding back the entries after it.
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A deliverer's lease: the entry is theirs until then (a crashed deliverer's
    # lease runs out and another takes over). Claimed with a conditional UPDATE.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    # The ts of the message this entry posted (thread reply or channel message),
    # recorded as soon as it is sent, so a retry never posts it twice.
    message_ts: Mapped[str | None] = mapped_column(String(40))


class Announcement(Base):
    """The Slack message that stands for an incident in a channel, edited in place."""

    __tablename__ = "announcements"
    __table_args__ = (UniqueConstraint("incident_id", "channel"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    channel: Mapped[str] = mapped_column(String(40))
    ts: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SeenRequest(Base):
    """A signed Slack request already taken in, remembered while its signature is valid,
    so a replay (or a retry of it) is answered without being applied again."""

    __tablename__ = "seen_requests"
    # A SHA-256 of the request's signature: the signature covers the timestamp and
    # the body, so it names the request exactly; hashed, it is no use to anyone.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class RateLimit(Base):
    """How many times a key (a client address's sign-ups) was counted in its current window,
    shared by every process because it is the database."""

    __tablename__ = "rate_limits"
    # What is limited and for whom, e.g. `signup:` and a hash of the client address.
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    count: Mapped[int] = mapped_column(Integer)


class ApiKey(Base):
    """A key for the REST API (SPEC §10): only a SHA-256 of it is kept, so a copy of the
    database lets nobody in; its name is the actor the audit log records."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique among live keys: a revoked key's name may be given to a new key.
    name: Mapped[str] = mapped_column(String(40), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Subscriber(Base):
    """Someone told when something changes (SPEC §9): an email address, or a webhook URL
    with an address for failure notices.

    Only a confirmed subscriber that is neither unsubscribed, quarantined nor bouncing
    is sent anything but its confirmation. `token` (≥ 128 random bits) is behind its
    confirm, manage and unsubscribe links.
    """

    __tablename__ = "subscribers"
    __table_args__ = (
        # One live subscription per address (or webhook URL) and kind.
        partial_index(
            "uq_subscribers_live_address",
            "kind",
            "address_key",
            unique=True,
            where="unsubscribed_at IS NULL",
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True, default=new_code)
    kind: Mapped[str] = mapped_column(String(10))  # email | webhook
    email: Mapped[str] = mapped_column(String(320))
    endpoint: Mapped[str | None] = mapped_column(Text)
    # How uniqueness is judged: the address in lower case, or the webhook URL.
    address_key: Mapped[str] = mapped_column(String(2048))
    # A webhook's Standard Webhooks signing secret (`whsec_…`).
    secret: Mapped[str | None] = mapped_column(String(80))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(10))  # page | slack | cli | api | import
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A webhook that kept failing for 24 hours; an address whose mail was refused.
    quarantined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Where an imported subscriber came from (the Statuspage id), for idempotent imports.
    external_id: Mapped[str | None] = mapped_column(String(64), index=True)

    components: Mapped[list[Component]] = relationship(
        secondary="subscriber_components", lazy="selectin", order_by="Component.position"
    )


class SubscriberComponent(Base):
    """A component a subscriber follows; a subscriber with none follows everything."""

    __tablename__ = "subscriber_components"
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    component_id: Mapped[int] = mapped_column(ForeignKey("components.id"), primary_key=True)


class StatuspageId(Base):
    """Which of our rows an imported Statuspage object became (SPEC §11).

    Keyed by the Statuspage page and the object's kind and id, so a second import
    of the same page updates the rows the first made instead of adding more, and an
    old Statuspage link (an incident's id) can be mapped to its number here. One
    table for every kind keeps the imported tables free of Statuspage's columns.
    """

    __tablename__ = "statuspage_ids"
    __table_args__ = (UniqueConstraint("page_id", "kind", "statuspage_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[str] = mapped_column(String(64))
    # group | component | incident | update | subscriber | template | postmortem
    kind: Mapped[str] = mapped_column(String(20))
    statuspage_id: Mapped[str] = mapped_column(String(64))
    # The row's id in its own table (component_groups, components, incidents, ...).
    local_id: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
