"""A read-only picture of the page's state, in frozen values, for the renderers.

Renderers never see ORM rows, so a template can't trigger a query and a render
can run anywhere. The values are defined here; `storage.snapshot_cache` builds
them (incrementally, for the publisher), and `build_snapshot` builds them once.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from storage.metrics import MetricView
from storage.rules import (
    IncidentStatus,
    Kind,
    MaintenanceStatus,
    PageStatus,
    is_closed,
    worst,
)

if TYPE_CHECKING:  # the views are made from rows; the ORM is for Slack's one-incident views
    from sqlalchemy.orm import Session

    from storage.models import Component, Group, Incident, Postmortem

__all__ = [
    "UPTIME_DAYS",
    "AffectedView",
    "ChangeView",
    "ComponentView",
    "GroupView",
    "IncidentRef",
    "IncidentView",
    "MetricView",
    "PageInfo",
    "PostmortemView",
    "Snapshot",
    "UpdateView",
    "UptimeDay",
    "build_snapshot",
    "component_view",
    "group_view",
    "grouped",
    "page_id",
]

UPTIME_DAYS = 90
EMPTY_PAGE_UPDATED_AT = datetime(1970, 1, 1, tzinfo=UTC)

# The statuses `is_closed` calls over, per kind.
_STATUSES = (*IncidentStatus, *MaintenanceStatus)
_CLOSED: dict[str, frozenset[str]] = {
    kind.value: frozenset(s.value for s in _STATUSES if is_closed(kind, s)) for kind in Kind
}


@dataclass(frozen=True, slots=True)
class PageInfo:
    """The page itself: Statuspage's `page` object plus what the HTML needs."""

    id: str
    name: str
    url: str
    time_zone: str
    support_email: str | None = None
    # Where the sign-up form posts (`statusbot serve`); empty: the page's own address.
    app_url: str = ""

    @property
    def signup_base(self) -> str:
        """The app's address, for the form's action and the served pages' links."""
        return (self.app_url or self.url).rstrip("/")


@dataclass(frozen=True, slots=True)
class IncidentRef:
    number: int
    title: str
    impact: str


@dataclass(frozen=True, slots=True)
class UptimeDay:
    """One bar of a component's 90-day uptime strip."""

    day: date
    uptime: float | None  # None: no data (before the component existed)
    outage_minutes: int
    major_minutes: int
    partial_minutes: int
    worst: str | None
    incidents: tuple[IncidentRef, ...] = ()


@dataclass(frozen=True, slots=True)
class ComponentView:
    code: str
    name: str
    description: str | None
    position: int
    status: str
    group_code: str | None
    showcase: bool
    only_show_if_degraded: bool
    start_date: date | None
    created_at: datetime
    updated_at: datetime
    uptime_days: tuple[UptimeDay, ...] = ()
    uptime: float | None = None  # over the days shown, None without data


@dataclass(frozen=True, slots=True)
class GroupView:
    code: str
    name: str
    description: str | None
    position: int
    status: str  # the worst of its components
    created_at: datetime
    updated_at: datetime
    components: tuple[ComponentView, ...]


@dataclass(frozen=True, slots=True)
class ChangeView:
    """Statuspage's `affected_components` entry of an update."""

    code: str
    name: str
    old_status: str
    new_status: str


@dataclass(frozen=True, slots=True)
class UpdateView:
    code: str
    status: str
    body: str
    display_at: datetime
    created_at: datetime
    updated_at: datetime
    deliver_notifications: bool
    changes: tuple[ChangeView, ...]


@dataclass(frozen=True, slots=True)
class PostmortemView:
    """A published postmortem: Statuspage's `postmortem_*` fields of an incident."""

    body: str
    published_at: datetime
    body_updated_at: datetime
    notified_subscribers: bool


@dataclass(frozen=True, slots=True)
class AffectedView:
    code: str
    name: str
    status: str  # the component's status now
    group_code: str | None
    position: int
    showcase: bool
    description: str | None
    created_at: datetime
    updated_at: datetime
    start_date: date | None


class _ComponentFields(Protocol):
    """What an AffectedView is made of: a Component row, or its columns as selected."""

    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def position(self) -> int: ...
    @property
    def showcase(self) -> bool: ...
    @property
    def description(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def start_date(self) -> date | None: ...


def affected_view(c: _ComponentFields, group_code: str | None) -> AffectedView:
    """A component as an incident that affects it shows it."""
    return AffectedView(
        code=c.code,
        name=c.name,
        status=c.status,
        group_code=group_code,
        position=c.position,
        showcase=c.showcase,
        description=c.description,
        created_at=c.created_at,
        updated_at=c.updated_at,
        start_date=c.start_date,
    )


@dataclass(frozen=True, slots=True)
class IncidentView:
    """An incident or a maintenance; updates newest first, as Statuspage lists them."""

    number: int
    kind: str
    title: str
    status: str
    impact: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime
    monitoring_at: datetime | None
    resolved_at: datetime | None
    scheduled_for: datetime | None
    scheduled_until: datetime | None
    auto: bool
    components: tuple[AffectedView, ...]
    updates: tuple[UpdateView, ...]
    # Slack's views only (`incident_view`); a snapshot never has a draft, and never
    # the link to the Slack message an incident was declared from.
    draft: bool = False
    discarded: bool = False
    pending: tuple[ChangeView, ...] = ()  # a draft's states, set when it is published
    source_link: str | None = None
    # Published postmortems only, in snapshots and in Slack's views alike.
    postmortem: PostmortemView | None = None
    impact_override: bool = False  # the commander set the impact (the v1 API shows it)

    @property
    def closed(self) -> bool:
        """Resolved, completed or cancelled (as `rules.is_closed` says)."""
        # Renderers ask this thousands of times a render: a set lookup, not an enum call.
        return self.status in _CLOSED.get(self.kind, ())

    @property
    def last_update_at(self) -> datetime:
        """When it last changed on the page: its newest update's display time."""
        return self.updates[0].display_at if self.updates else self.created_at


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a render needs, at one moment."""

    page: PageInfo
    generated_at: datetime
    status: PageStatus
    components: tuple[ComponentView, ...]  # every live component, page order
    groups: tuple[GroupView, ...]
    layout: tuple[ComponentView | GroupView, ...]  # top level, in page order
    incidents: tuple[IncidentView, ...]  # incidents only, newest first
    maintenances: tuple[IncidentView, ...]  # maintenances only, newest scheduled_for first
    metrics: tuple[MetricView, ...] = ()
    # What the properties below worked out, once per snapshot: each render asks more
    # than once, and each answer is a pass over thousands of incidents.
    _derived: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_derived", {})

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.page.time_zone)

    @property
    def updated_at(self) -> datetime:
        """The newest change anywhere on the page (the epoch for an empty page, so an
        unchanged page renders the same bytes whenever it is rendered)."""
        found: datetime | None = self._derived.get("updated_at")
        if found is None:
            times = [EMPTY_PAGE_UPDATED_AT]
            times += [c.updated_at for c in self.components]
            times += [i.updated_at for i in self.incidents + self.maintenances]
            found = self._derived["updated_at"] = max(times)
        return found

    @property
    def unresolved_incidents(self) -> tuple[IncidentView, ...]:
        found: tuple[IncidentView, ...] | None = self._derived.get("unresolved")
        if found is None:
            found = self._derived["unresolved"] = tuple(i for i in self.incidents if not i.closed)
        return found

    @property
    def active_maintenances(self) -> tuple[IncidentView, ...]:
        return tuple(m for m in self.maintenances if m.status in ("in_progress", "verifying"))

    @property
    def upcoming_maintenances(self) -> tuple[IncidentView, ...]:
        return tuple(
            sorted(
                (m for m in self.maintenances if m.status == "scheduled"),
                key=lambda m: (m.scheduled_for or m.created_at, m.number),
            )
        )


def page_id(url: str) -> str:
    """A stable Statuspage-style page id (12 lowercase letters and digits) from the page URL."""
    digest = hashlib.sha256(url.strip().rstrip("/").lower().encode()).digest()
    return base64.b32encode(digest).decode().lower()[:12]


def build_snapshot(
    session: Session,
    *,
    page: PageInfo,
    now: datetime,
    metrics: Sequence[MetricView] | None = None,
) -> Snapshot:
    """Read the page's whole state into frozen values (metrics from storage unless given)."""
    # The builder imports these values, so it is imported when first used.
    from storage.snapshot_cache import SnapshotCache

    snapshot = SnapshotCache().build(session, page=page, now=now).snapshot
    if metrics is not None:
        snapshot = replace(snapshot, metrics=tuple(metrics))
    return snapshot


def incident_view(incident: Incident) -> IncidentView:
    """One incident or maintenance as frozen values, updates newest first."""
    # Slack's announcements and modals need one incident, not a whole snapshot; a
    # render never calls this, so it does not load the incident queries' ORM options.
    from storage.incidents import pending_states

    components = tuple(
        affected_view(a.component, a.component.group.code if a.component.group else None)
        for a in sorted(incident.affected, key=lambda a: a.id)
    )
    updates = tuple(
        UpdateView(
            code=u.code,
            status=u.status,
            body=u.body,
            display_at=u.display_at,
            created_at=u.created_at,
            updated_at=u.updated_at,
            deliver_notifications=u.deliver_notifications,
            changes=tuple(
                ChangeView(
                    code=ch.component.code,
                    name=ch.component.name,
                    old_status=ch.old_status,
                    new_status=ch.new_status,
                )
                for ch in u.changes
            ),
        )
        for u in sorted(incident.updates, key=lambda u: (u.display_at, u.id), reverse=True)
    )
    return IncidentView(
        number=incident.number,
        kind=incident.kind,
        title=incident.title,
        status=incident.status,
        impact=incident.impact,
        created_at=incident.created_at,
        updated_at=incident.updated_at,
        started_at=incident.started_at,
        monitoring_at=incident.monitoring_at,
        resolved_at=incident.resolved_at,
        scheduled_for=incident.scheduled_for,
        scheduled_until=incident.scheduled_until,
        auto=incident.auto,
        components=components,
        updates=updates,
        draft=incident.draft,
        discarded=incident.discarded_at is not None,
        pending=tuple(
            ChangeView(code=c.code, name=c.name, old_status=c.status, new_status=state.value)
            for c, state in pending_states(incident)
        )
        if incident.draft
        else (),
        source_link=incident.source_link,
        postmortem=postmortem_view(incident.postmortem),
        impact_override=incident.impact_override,
    )


def postmortem_view(postmortem: Postmortem | None) -> PostmortemView | None:
    """A postmortem as the public may see it: only once it is published."""
    if postmortem is None or postmortem.published_at is None:
        return None
    return PostmortemView(
        body=postmortem.body,
        published_at=postmortem.published_at,
        body_updated_at=postmortem.body_updated_at,
        notified_subscribers=postmortem.notified_at is not None,
    )


def component_view(c: Component) -> ComponentView:
    """One live component as frozen values, without its uptime (the v1 API's view)."""
    return ComponentView(
        code=c.code,
        name=c.name,
        description=c.description,
        position=c.position,
        status=c.status,
        group_code=c.group.code if c.group else None,
        showcase=c.showcase,
        only_show_if_degraded=c.only_show_if_degraded,
        start_date=c.start_date,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


def group_view(g: Group) -> GroupView:
    """One group and its live components as frozen values."""
    inside = tuple(
        component_view(c)
        for c in sorted(g.components, key=lambda c: (c.position, c.id))
        if c.removed_at is None
    )
    return grouped(g, inside, inside)


class _GroupFields(Protocol):
    """What a GroupView is made of: a Group row, or its columns as selected."""

    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def position(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


class _MemberFields(Protocol):
    """What a group's rollup reads of each live member: a component's row or view."""

    @property
    def status(self) -> str: ...
    @property
    def updated_at(self) -> datetime: ...


def grouped(
    g: _GroupFields, members: Sequence[_MemberFields], components: tuple[ComponentView, ...]
) -> GroupView:
    """A group's view: its own fields, the worst status and the latest change among its
    live `members`, and the `components` it shows (their views, or none at all)."""
    return GroupView(
        code=g.code,
        name=g.name,
        description=g.description,
        position=g.position,
        status=worst(m.status for m in members).value,
        created_at=g.created_at,
        updated_at=max([g.updated_at, *(m.updated_at for m in members)]),
        components=components,
    )
