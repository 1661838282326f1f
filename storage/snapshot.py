"""A read-only picture of the page's state, in frozen values, for the renderers.

Renderers never see ORM rows, so a template can't trigger a query and a render
can run anywhere. `build_snapshot` reads everything a render needs in a few
queries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from storage import components as component_store
from storage.models import (
    ComponentChange,
    Incident,
    IncidentUpdate,
    StatusChange,
)
from storage.rules import (
    ComponentStatus,
    Impact,
    IncidentStatus,
    Kind,
    PageStatus,
    is_closed,
    page_status,
    worst,
)
from storage.uptime import DayUptime, daily_uptime, uptime_over_days

UPTIME_DAYS = 90


@dataclass(frozen=True, slots=True)
class PageInfo:
    """The page itself: Statuspage's `page` object plus what the HTML needs."""

    id: str
    name: str
    url: str
    time_zone: str
    support_email: str | None = None


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

    @property
    def closed(self) -> bool:
        return is_closed(Kind(self.kind), self.status)

    @property
    def last_update_at(self) -> datetime:
        """When it last changed on the page: its newest update's display time."""
        return self.updates[0].display_at if self.updates else self.created_at


@dataclass(frozen=True, slots=True)
class MetricView:
    """A metric and its points, already cut to each chart's range and resolution."""

    code: str
    name: str
    unit: str
    description: str | None
    # view name ("day", "week", "month") → (time, value) points, oldest first
    series: dict[str, tuple[tuple[datetime, float], ...]] = field(default_factory=dict)


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

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.page.time_zone)

    @property
    def updated_at(self) -> datetime:
        """The newest change anywhere on the page."""
        times = [self.generated_at - timedelta(days=3650)]
        times += [c.updated_at for c in self.components]
        times += [i.updated_at for i in self.incidents + self.maintenances]
        return max(times)

    @property
    def unresolved_incidents(self) -> tuple[IncidentView, ...]:
        return tuple(i for i in self.incidents if not i.closed)

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


def build_snapshot(
    session: Session,
    *,
    page: PageInfo,
    now: datetime,
    metrics: Sequence[MetricView] = (),
) -> Snapshot:
    """Read the page's whole state into frozen values."""
    tz = ZoneInfo(page.time_zone)
    live = component_store.live(session)
    items = _incidents(session)
    windows = _incident_windows(items)
    history = _recent_history(session, [c.id for c in live], now=now, tz=tz)

    views: dict[int, ComponentView] = {}
    for c in live:
        days: tuple[UptimeDay, ...] = ()
        uptime: float | None = None
        if c.showcase:
            initial, changes = history.get(c.id, (ComponentStatus.OPERATIONAL, []))
            raw = daily_uptime(
                changes,
                initial=initial,
                start_date=c.start_date,
                tz=tz,
                now=now,
                days=UPTIME_DAYS,
            )
            uptime = uptime_over_days(raw)
            days = tuple(_bar(d, windows.get(c.id, []), tz) for d in raw)
        views[c.id] = ComponentView(
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
            uptime_days=days,
            uptime=uptime,
        )

    groups: list[GroupView] = []
    layout: list[ComponentView | GroupView] = []
    seen_groups: set[int] = set()
    for c in live:
        if c.group is None:
            layout.append(views[c.id])
            continue
        if c.group.id in seen_groups:
            continue
        seen_groups.add(c.group.id)
        members = tuple(views[m.id] for m in live if m.group_id == c.group.id)
        view = GroupView(
            code=c.group.code,
            name=c.group.name,
            description=c.group.description,
            position=c.group.position,
            status=worst(m.status for m in members).value,
            created_at=c.group.created_at,
            updated_at=max([c.group.updated_at, *(m.updated_at for m in members)]),
            components=members,
        )
        groups.append(view)
        layout.append(view)

    incident_views = [_incident_view(i) for i in items]
    incidents = tuple(
        sorted(
            (i for i in incident_views if i.kind == Kind.INCIDENT),
            key=lambda i: (i.created_at, i.number),
            reverse=True,
        )
    )
    maintenances = tuple(
        sorted(
            (i for i in incident_views if i.kind == Kind.MAINTENANCE),
            key=lambda i: (i.scheduled_for or i.created_at, i.number),
            reverse=True,
        )
    )
    status = page_status(
        (c.status for c in live),
        (Impact(i.impact) for i in incidents if not i.closed),
    )
    return Snapshot(
        page=page,
        generated_at=now,
        status=status,
        components=tuple(views[c.id] for c in live),
        groups=tuple(groups),
        layout=tuple(layout),
        incidents=incidents,
        maintenances=maintenances,
        metrics=tuple(metrics),
    )


def _incidents(session: Session) -> list[Incident]:
    stmt = select(Incident).options(
        selectinload(Incident.updates)
        .selectinload(IncidentUpdate.changes)
        .selectinload(ComponentChange.component),
        selectinload(Incident.affected),
    )
    return list(session.scalars(stmt))


def _incident_view(incident: Incident) -> IncidentView:
    affected = tuple(
        AffectedView(
            code=a.component.code,
            name=a.component.name,
            status=a.component.status,
            group_code=a.component.group.code if a.component.group else None,
            position=a.component.position,
            showcase=a.component.showcase,
            description=a.component.description,
            created_at=a.component.created_at,
            updated_at=a.component.updated_at,
            start_date=a.component.start_date,
        )
        for a in incident.affected
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
        components=affected,
        updates=updates,
    )


Window = tuple[datetime, datetime | None, IncidentRef]


def _incident_windows(items: Sequence[Incident]) -> dict[int, list[Window]]:
    """For each component, when each incident that touched it was open."""
    out: dict[int, list[Window]] = defaultdict(list)
    for i in items:
        if i.kind != Kind.INCIDENT:
            continue
        ref = IncidentRef(number=i.number, title=i.title, impact=i.impact)
        end = i.resolved_at if i.status == IncidentStatus.RESOLVED else None
        for a in i.affected:
            out[a.component_id].append((i.started_at, end, ref))
    return out


def _recent_history(
    session: Session, component_ids: list[int], *, now: datetime, tz: ZoneInfo
) -> dict[int, tuple[ComponentStatus, list[tuple[datetime, ComponentStatus]]]]:
    """Per component: its state when the uptime window opens, and the changes after."""
    first_day = now.astimezone(tz).date() - timedelta(days=UPTIME_DAYS + 1)
    since = datetime.combine(first_day, datetime.min.time(), tzinfo=tz)
    out: dict[int, tuple[ComponentStatus, list[tuple[datetime, ComponentStatus]]]] = {}
    if not component_ids:
        return out
    # The newest change before the window gives each component's starting state.
    ranked = (
        select(
            StatusChange.component_id,
            StatusChange.status,
            func.row_number()
            .over(
                partition_by=StatusChange.component_id,
                order_by=(StatusChange.at.desc(), StatusChange.id.desc()),
            )
            .label("rank"),
        )
        .where(StatusChange.component_id.in_(component_ids), StatusChange.at < since)
        .subquery()
    )
    initial = {
        component_id: ComponentStatus(status)
        for component_id, status in session.execute(
            select(ranked.c.component_id, ranked.c.status).where(ranked.c["rank"] == 1)
        )
    }
    recent = (
        select(StatusChange.component_id, StatusChange.at, StatusChange.status)
        .where(StatusChange.component_id.in_(component_ids), StatusChange.at >= since)
        .order_by(StatusChange.at, StatusChange.id)
    )
    changes: dict[int, list[tuple[datetime, ComponentStatus]]] = defaultdict(list)
    for component_id, at, status in session.execute(recent):
        changes[component_id].append((at, ComponentStatus(status)))
    for cid in component_ids:
        out[cid] = (initial.get(cid, ComponentStatus.OPERATIONAL), changes.get(cid, []))
    return out


def _bar(day: DayUptime, windows: list[Window], tz: ZoneInfo) -> UptimeDay:
    start = datetime.combine(day.day, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(day.day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    refs = tuple(
        ref
        for opened, closed, ref in windows
        if opened < end and (closed is None or closed >= start)
    )
    return UptimeDay(
        day=day.day,
        uptime=day.uptime,
        outage_minutes=day.outage_minutes,
        major_minutes=round(day.major_seconds / 60),
        partial_minutes=round(day.partial_seconds / 60),
        worst=day.worst.value if day.worst else None,
        incidents=refs,
    )


# The public name for the one-incident view the Slack announcements render.
incident_view = _incident_view
