"""Incremental snapshots: each build rereads only what changed since the one before.

The publisher runs after every change, and most changes touch one incident, so
`SnapshotCache` keeps the rows and views it built and rereads only what a cheap
signature query says has moved. `build_snapshot` is a build with an empty cache.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from itertools import compress
from operator import ne
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from storage import metrics as metric_store
from storage.metrics import MetricView, Series
from storage.rules import ComponentStatus, IncidentStatus, Kind, page_status
from storage.snapshot import (
    AffectedView,
    ChangeView,
    ComponentView,
    GroupView,
    IncidentRef,
    IncidentView,
    PageInfo,
    PostmortemView,
    Snapshot,
    UpdateView,
    UptimeDay,
    affected_view,
    grouped,
)
from storage.snapshot_marks import Marks, Probe, UpdateTally, read_probe
from storage.snapshot_rows import (
    FILTER_LIMIT,
    Change,
    ComponentRow,
    GroupRow,
    History,
    IncidentRow,
    SignatureRow,
    UpdateRow,
    incident_pages_snapshot,
    load_incidents,
    recent_history,
    signature,
    window_start,
)
from storage.snapshot_strips import Strips, Window


@dataclass(frozen=True, slots=True)
class Build:
    """A snapshot and what changed since the cache's previous build."""

    snapshot: Snapshot
    changed: frozenset[int]  # numbers of incidents and maintenances whose view changed or is new
    removed: frozenset[int]  # numbers that are gone from the database
    full: bool  # first build (or page settings changed): every page needs rendering


@dataclass(slots=True)
class _Entry:
    """One incident as last read: its signature, its raw rows, and its view."""

    signature: tuple[object, ...]
    row: IncidentRow
    updates: tuple[tuple[UpdateRow, tuple[Change, ...]], ...]
    affected: tuple[int, ...]
    refs: frozenset[int]  # every component id its view mentions
    view: IncidentView


class SnapshotCache:
    """Builds snapshots incrementally: each build rereads only what changed since the last.

    A cheap signature read (ids, update times, update counts) finds the incidents
    that changed; only those are reloaded. Uptime is recomputed only for
    components with new history (today's bar is redone every time, as it grows
    with the clock), and metric charts only when points arrive or a bucket
    rolls over. Not thread-safe: one caller at a time (the publisher holds a lock).
    """

    def __init__(self) -> None:
        self._reset(None)

    def _reset(self, page: PageInfo | None) -> None:
        self._page = page
        self._entries: dict[int, _Entry] = {}
        self._affected_views: dict[int, AffectedView] = {}
        self._history: dict[int, History] = {}
        self._history_version: dict[int, int] = {}
        self._history_mark: Marks | None = None
        self._tally = UpdateTally()
        # The signature read as last seen: its rows and the postmortems' signatures.
        self._seen: tuple[list[SignatureRow], dict[int, tuple[object, ...]]] | None = None
        self._history_since: datetime | None = None
        self._strips = Strips()
        # (metric id, code, view) → (its oldest bucket, its points); the newest point id seen.
        self._charts: dict[tuple[int, str, str], tuple[int, Series]] = {}
        self._points_mark = -1
        # Per metric, points seen later than their build's clock: (that clock, the newest).
        self._points_due: dict[int, tuple[datetime, datetime]] = {}
        # The incidents open at some time since the uptime window's start, as (that
        # start, {incident id: (window, affected component ids)}), and the incident ids
        # reloaded or gone since it was brought up to date.
        self._open_since: tuple[datetime, dict[int, tuple[Window, tuple[int, ...]]]] | None = None
        self._open_stale: set[int] = set()

    def build(
        self,
        session: Session,
        *,
        page: PageInfo,
        now: datetime,
        dirty: Collection[int] = (),
        on_incidents: Callable[[Snapshot], None] | None = None,
    ) -> Build:
        """A snapshot at `now`; `dirty` names incident numbers known to have changed.

        `on_incidents` is handed what incident pages need (snapshot_rows'
        incident_pages_snapshot) as soon as it is read, before uptime and charts.

        A build that fails (the database, the driver, a bug) leaves the cache empty:
        what it remembers as seen may already be ahead of what its entries hold, and
        the next build must compare everything again rather than trust it.
        """
        try:
            return self._build(session, page=page, now=now, dirty=dirty, early=on_incidents)
        except BaseException:
            self._reset(None)
            raise

    def _build(
        self,
        session: Session,
        *,
        page: PageInfo,
        now: datetime,
        dirty: Collection[int],
        early: Callable[[Snapshot], None] | None,
    ) -> Build:
        full = page != self._page
        if full:
            self._reset(page)
        tz = ZoneInfo(page.time_zone)

        history_mark = self._history_mark
        probe = read_probe(
            session,
            updates_above=self._tally.highest,
            history_above=history_mark.highest if history_mark is not None else None,
        )
        rows = probe.components
        groups = {g.id: g for g in probe.groups}
        comp_changed, renamed = self._refresh_affected_views(rows, groups)
        changed, removed = self._refresh_incidents(session, comp_changed, renamed, dirty, probe)

        live = sorted((r for r in rows if r.removed_at is None), key=partial(_page_order, groups))
        entries = self._entries.values()
        incidents = tuple(
            sorted(
                (e.view for e in entries if e.row.kind == Kind.INCIDENT),
                key=_incident_order,
                reverse=True,
            )
        )
        maintenances = tuple(
            sorted(
                (e.view for e in entries if e.row.kind == Kind.MAINTENANCE),
                key=_maintenance_order,
                reverse=True,
            )
        )
        status = page_status(
            (c.status for c in live),
            (i.impact for i in incidents if not i.closed),
        )
        if early is not None:
            early(incident_pages_snapshot(page, now, status, live, groups, incidents, maintenances))

        since = self._refresh_history(session, [c.id for c in live], probe, now=now, tz=tz)
        windows = self._windows(now=now, since=since)
        views = {
            c.id: self._component_view(c, groups, windows.get(c.id, ()), now=now, tz=tz)
            for c in live
        }
        all_groups, layout = _layout(live, views, groups)
        snapshot = Snapshot(
            page=page,
            generated_at=now,
            status=status,
            components=tuple(views[c.id] for c in live),
            groups=all_groups,
            layout=layout,
            incidents=incidents,
            maintenances=maintenances,
            metrics=self._metrics(session, probe, now=now),
        )
        return Build(snapshot=snapshot, changed=changed, removed=removed, full=full)

    # --- Incidents ---------------------------------------------------------------------------

    def _refresh_affected_views(
        self, rows: list[ComponentRow], groups: dict[int, GroupRow]
    ) -> tuple[set[int], set[int]]:
        """Rebuild each component's AffectedView; returns the ids whose view changed, and
        of those the ids whose code or name changed (or that came or went)."""
        fresh: dict[int, AffectedView] = {}
        for c in rows:
            group = groups.get(c.group_id) if c.group_id is not None else None
            fresh[c.id] = affected_view(c, group.code if group else None)
        old = self._affected_views
        changed = {cid for cid, view in fresh.items() if old.get(cid) != view}
        changed |= old.keys() - fresh.keys()
        renamed = {
            cid
            for cid in changed
            if cid not in old
            or cid not in fresh
            or (old[cid].code, old[cid].name) != (fresh[cid].code, fresh[cid].name)
        }
        self._affected_views = fresh
        return changed, renamed

    def _refresh_incidents(
        self,
        session: Session,
        comp_changed: set[int],
        renamed: set[int],
        dirty: Collection[int],
        probe: Probe,
    ) -> tuple[frozenset[int], frozenset[int]]:
        """Reload incidents whose signature changed; rebuild views that name changed components."""
        tops, grown = self._tally.refresh(session, probe.updates, probe.updates_above)
        rows = probe.signatures
        postmortems = probe.postmortems
        wanted = set(dirty)
        seen = self._seen
        self._seen = (rows, postmortems)
        if seen is not None and grown is not None and len(seen[0]) == len(rows):
            current, gone = _moved(seen, rows, postmortems, tops, grown, wanted)
            gone &= self._entries.keys()
        else:
            current = {row[0]: signature(row, tops, postmortems) for row in rows}
            gone = self._entries.keys() - current.keys()
        reload = {
            iid
            for iid, sig in current.items()
            if iid not in self._entries or self._entries[iid].signature != sig or sig[0] in wanted
        }
        removed = frozenset(self._entries[iid].row.number for iid in gone)
        self._open_stale |= reload | gone
        for iid in gone:
            del self._entries[iid]

        changed: set[int] = set()
        if reload:
            loaded = load_incidents(session, reload, everything=len(reload) > FILTER_LIMIT)
            for iid, (row, updates, affected, postmortem) in loaded.items():
                if iid not in reload:
                    continue
                entry = self._entry(current[iid], row, updates, affected, postmortem)
                before = self._entries.get(iid)
                if before is None or before.view != entry.view:
                    changed.add(row.number)
                self._entries[iid] = entry
        if comp_changed:
            for iid, entry in self._entries.items():
                if iid in reload or not entry.refs & comp_changed:
                    continue
                if entry.refs & renamed:  # its updates name them too
                    fresh = self._entry(
                        entry.signature,
                        entry.row,
                        entry.updates,
                        entry.affected,
                        entry.view.postmortem,
                    )
                else:
                    # Only states and times moved, which only the affected list shows: the
                    # updates stay the same objects (and so do what is made of them).
                    components = tuple(self._affected_views[cid] for cid in entry.affected)
                    view = replace(entry.view, components=components)
                    fresh = _Entry(
                        entry.signature, entry.row, entry.updates, entry.affected, entry.refs, view
                    )
                if fresh.view != entry.view:
                    changed.add(entry.row.number)
                self._entries[iid] = fresh
        return frozenset(changed), removed

    def _entry(
        self,
        signature: tuple[object, ...],
        row: IncidentRow,
        updates: tuple[tuple[UpdateRow, tuple[Change, ...]], ...],
        affected: tuple[int, ...],
        postmortem: PostmortemView | None = None,
    ) -> _Entry:
        views = self._affected_views
        refs = set(affected)
        change_views: dict[Change, ChangeView] = {}

        def change_view(change: Change) -> ChangeView:
            found = change_views.get(change)
            if found is None:
                comp = views[change[0]]
                found = ChangeView(
                    code=comp.code, name=comp.name, old_status=change[1], new_status=change[2]
                )
                change_views[change] = found
            return found

        update_views = []
        for u, changes in sorted(updates, key=_update_order, reverse=True):
            if changes:  # most updates change no component
                refs.update(c[0] for c in changes)
            update_views.append(
                UpdateView(
                    code=u.code,
                    status=u.status,
                    body=u.body,
                    display_at=u.display_at,
                    created_at=u.created_at,
                    updated_at=u.updated_at,
                    deliver_notifications=u.deliver_notifications,
                    changes=tuple(map(change_view, changes)) if changes else (),
                )
            )
        view = IncidentView(
            number=row.number,
            kind=row.kind,
            title=row.title,
            status=row.status,
            impact=row.impact,
            created_at=row.created_at,
            updated_at=row.updated_at,
            started_at=row.started_at,
            monitoring_at=row.monitoring_at,
            resolved_at=row.resolved_at,
            scheduled_for=row.scheduled_for,
            scheduled_until=row.scheduled_until,
            auto=row.auto,
            components=tuple(views[cid] for cid in affected),
            updates=tuple(update_views),
            postmortem=postmortem,
        )
        return _Entry(signature, row, updates, affected, frozenset(refs), view)

    # --- Uptime ------------------------------------------------------------------------------

    def _refresh_history(
        self,
        session: Session,
        component_ids: list[int],
        probe: Probe,
        *,
        now: datetime,
        tz: ZoneInfo,
    ) -> datetime:
        """Keep each live component's history since the uptime window opened; returns that time."""
        since = window_start(now, tz)
        if since != self._history_since:
            self._history.clear()
            self._history_since = since
        stale = {cid for cid in component_ids if cid not in self._history}
        before = self._history_mark
        marks = probe.history
        if before is None:
            stale = set(component_ids)
        elif marks != before:
            # Read with the marks, above the high mark `before` had.
            newer = probe.history_above
            assert newer is not None
            if not marks.grew_by(before, sum(newer.values()), 0):  # its ids are not summed
                # Rows appeared below the old high mark (or vanished): start over.
                stale = set(component_ids)
            else:
                stale |= newer.keys() & set(component_ids)
        self._history_mark = marks
        if stale:
            self._history.update(recent_history(session, sorted(stale), since=since))
            for cid in stale:
                self._history_version[cid] = self._history_version.get(cid, 0) + 1
        return since

    def _windows(self, *, now: datetime, since: datetime) -> dict[int, tuple[Window, ...]]:
        """For each component, the incidents open at some time since `since`."""
        # Kept from build to build, redone only for the incidents reloaded since: most
        # of a long history ended before the window opened, and a build after one
        # change reloads one incident.
        if self._open_since is None or self._open_since[0] != since:
            self._open_since = (since, {})
            stale: Collection[int] = self._entries.keys()
        else:
            stale = self._open_stale
        found = self._open_since[1]
        for iid in stale:
            e = self._entries.get(iid)
            window = _window(e.row, since) if e is not None else None
            if e is None or window is None:
                found.pop(iid, None)
            else:
                found[iid] = (window, e.affected)
        self._open_stale = set()
        out: dict[int, list[Window]] = defaultdict(list)
        for window, affected in found.values():
            if window[0] > now:
                continue
            for cid in affected:
                out[cid].append(window)
        return {cid: tuple(sorted(w, key=_window_order)) for cid, w in out.items()}

    def _component_view(
        self,
        c: ComponentRow,
        groups: dict[int, GroupRow],
        windows: tuple[Window, ...],
        *,
        now: datetime,
        tz: ZoneInfo,
    ) -> ComponentView:
        days: tuple[UptimeDay, ...] = ()
        uptime: float | None = None
        if c.showcase:
            history = self._history.get(c.id, (ComponentStatus.OPERATIONAL, []))
            version = self._history_version.get(c.id, 0)
            days, uptime = self._strips.days(c, history, version, windows, now=now, tz=tz)
        group = groups.get(c.group_id) if c.group_id is not None else None
        return ComponentView(
            code=c.code,
            name=c.name,
            description=c.description,
            position=c.position,
            status=c.status,
            group_code=group.code if group else None,
            showcase=c.showcase,
            only_show_if_degraded=c.only_show_if_degraded,
            start_date=c.start_date,
            created_at=c.created_at,
            updated_at=c.updated_at,
            uptime_days=days,
            uptime=uptime,
        )

    # --- Metrics -----------------------------------------------------------------------------

    def _metrics(self, session: Session, probe: Probe, *, now: datetime) -> tuple[MetricView, ...]:
        """Every metric's charts, re-read only where points arrived.

        A chart that gained points has its buckets from the oldest new point on read
        again; one whose oldest bucket moved on drops the buckets that left it. A
        bucket's average only moves when points arrive, above the newest id seen, or
        when a point seen already comes due: the use cases refuse points in the
        future, but one can be stamped later than this build's `now` (written between
        reading the clock and the first query, or by a host whose clock is ahead).
        Such a metric's charts are read again from the bucket of the build that saw
        it, build after build, until the clock has passed its newest point.
        """
        rows = probe.metrics
        if not rows:
            return ()
        arrived = self._arrived(session, probe.newest_point, now=now)
        out = []
        for m in rows:
            series: dict[str, Series] = {}
            for view in metric_store.RANGES:
                first = view.first_bucket(now)
                key = (m.id, m.code, view.name)
                cached = self._charts.get(key)
                if cached is None or first < cached[0]:  # the clock went back: read afresh
                    points = metric_store.chart(session, m.id, view, now=now)
                else:
                    points = cached[1]
                    if first != cached[0]:
                        opened = datetime.fromtimestamp(first * view.bucket_seconds, UTC)
                        points = tuple(p for p in points if p[0] >= opened)
                    if m.id in arrived:
                        tail = metric_store.bucket_of(view, arrived[m.id])
                        start = datetime.fromtimestamp(tail * view.bucket_seconds, UTC)
                        kept = tuple(p for p in points if p[0] < start)
                        points = kept + metric_store.chart(
                            session, m.id, view, now=now, from_bucket=tail
                        )
                self._charts[key] = (first, points)
                series[view.name] = points
            out.append(metric_store.view_of(m, series))
        return tuple(out)

    def _arrived(self, session: Session, newest: int, *, now: datetime) -> dict[int, datetime]:
        """Per metric, the time from which its charts must be read again: its oldest point
        above the newest id seen, or a build's clock that a point seen was stamped after."""
        arrived: dict[int, datetime] = {}
        if newest < self._points_mark:
            self._charts.clear()  # points were deleted (a wiped database): start over
            self._points_due.clear()
        elif newest != self._points_mark and self._points_mark >= 0:
            added = metric_store.points_added_since(session, self._points_mark)
            for mid, (oldest, latest) in added.items():
                arrived[mid] = oldest
                if latest > now:  # not in the charts yet: read again until it is
                    since, until = self._points_due.get(mid, (now, latest))
                    self._points_due[mid] = (min(since, now), max(until, latest))
        self._points_mark = newest
        for mid, (since, until) in list(self._points_due.items()):
            arrived[mid] = min(arrived.get(mid, since), since)
            if until <= now:
                del self._points_due[mid]  # this build reads it: due at last
        return arrived


# --- Shaping ---------------------------------------------------------------------------------


def _moved(
    seen: tuple[list[SignatureRow], dict[int, tuple[object, ...]]],
    rows: list[SignatureRow],
    postmortems: dict[int, tuple[object, ...]],
    tops: dict[int, tuple[int, int]],
    grown: set[int],
    wanted: set[int],
) -> tuple[dict[int, tuple[object, ...]], set[int]]:
    """The signatures of the incidents that may have changed since the rows `seen`, and
    the ids gone; as many rows as before, both lists by id.

    Rows are compared position by position (in C): an unchanged incident is the same
    row at the same place, an edited one differs where it stands, and an incident
    added and another removed shift the rows between them, which are then read again.
    """
    before, seen_postmortems = seen
    at = list(compress(range(len(rows)), map(ne, rows, before)))
    ids = {rows[k][0] for k in at}
    gone = {before[k][0] for k in at} - ids
    ids |= grown
    ids.update(
        iid
        for iid in seen_postmortems.keys() | postmortems.keys()
        if seen_postmortems.get(iid) != postmortems.get(iid)
    )
    if wanted:
        ids.update(row[0] for row in rows if row[1] in wanted)
    current = {}
    for iid in ids:
        k = bisect_left(rows, (iid,))
        if k < len(rows) and rows[k][0] == iid:  # not a draft, not deleted
            current[iid] = signature(rows[k], tops, postmortems)
    return current, gone


def _page_order(groups: dict[int, GroupRow], c: ComponentRow) -> tuple[int, bool, int, int, int]:
    """The order of `components.live`: top-level items by position, members within groups."""
    group = groups.get(c.group_id) if c.group_id is not None else None
    if group is None:
        return (c.position, False, 0, c.position, c.id)
    return (group.position, True, group.id, c.position, c.id)


def _layout(
    live: list[ComponentRow], views: dict[int, ComponentView], groups: dict[int, GroupRow]
) -> tuple[tuple[GroupView, ...], tuple[ComponentView | GroupView, ...]]:
    out_groups: list[GroupView] = []
    layout: list[ComponentView | GroupView] = []
    members: dict[int, list[ComponentView]] = defaultdict(list)
    for c in live:
        if c.group_id is not None and c.group_id in groups:
            members[c.group_id].append(views[c.id])
    seen: set[int] = set()
    for c in live:
        group = groups.get(c.group_id) if c.group_id is not None else None
        if group is None:
            layout.append(views[c.id])
            continue
        if group.id in seen:
            continue
        seen.add(group.id)
        inside = tuple(members[group.id])
        view = grouped(group, inside, inside)
        out_groups.append(view)
        layout.append(view)
    return tuple(out_groups), tuple(layout)


def _incident_order(i: IncidentView) -> tuple[datetime, int]:
    return (i.created_at, i.number)


def _maintenance_order(i: IncidentView) -> tuple[datetime, int]:
    return (i.scheduled_for or i.created_at, i.number)


def _update_order(item: tuple[UpdateRow, tuple[Change, ...]]) -> tuple[datetime, int]:
    return (item[0].display_at, item[0].id)


def _window(row: IncidentRow, since: datetime) -> Window | None:
    """When an incident was open, if it was open at some time since `since`."""
    if row.kind != Kind.INCIDENT:
        return None
    end = row.resolved_at if row.status == IncidentStatus.RESOLVED else None
    if end is not None and end < since:
        return None
    return (row.started_at, end, IncidentRef(number=row.number, title=row.title, impact=row.impact))


def _window_order(w: Window) -> tuple[datetime, int]:
    return (w[0], w[2].number)
