"""Atlassian Statuspage's public API v2, field for field, from a snapshot.

Existing Statuspage clients (status widgets, chat integrations, dashboards)
read these files unchanged, so names, key order, nulls, enum values and the
timestamp format follow what Statuspage itself serves.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from renderers.memo import ByIdentity
from renderers.timefmt import INSTANTS
from storage.rules import Kind
from storage.snapshot import (
    AffectedView,
    ComponentView,
    GroupView,
    IncidentView,
    PostmortemView,
    Snapshot,
    UpdateView,
)

# Statuspage's incidents.json and scheduled-maintenances.json hold this many.
RECENT_LIMIT = 50

API_DIR = "api/v2"

Json = dict[str, object]


def render_api(snapshot: Snapshot) -> dict[str, str]:
    """Every api/v2 file, as relative path -> JSON text."""
    api = _Api(snapshot)
    unresolved = sorted(snapshot.unresolved_incidents, key=_created_key, reverse=True)
    recent = heapq.nlargest(RECENT_LIMIT, snapshot.incidents, key=_created_key)
    # Statuspage deletes a cancelled maintenance and has no "cancelled" status, so
    # its clients never see one; the HTML page and the calendar still show them.
    kept = [m for m in snapshot.maintenances if m.status != "cancelled"]
    scheduled = heapq.nlargest(RECENT_LIMIT, kept, key=_scheduled_key)
    upcoming = sorted(snapshot.upcoming_maintenances, key=_scheduled_key)
    active = sorted(snapshot.active_maintenances, key=_scheduled_key, reverse=True)
    # Statuspage's summary lists in-progress and upcoming work together, in time order.
    in_summary = sorted((*active, *upcoming), key=_scheduled_key)
    status = _dumps(
        {"indicator": snapshot.status.indicator, "description": snapshot.status.description}
    )
    page = _dumps(api.page)
    components = _dumps(api.components())

    def listed(items: Iterable[IncidentView]) -> str:
        return "[" + ",".join(_encoded(api.incident(i)) for i in items) + "]"

    files = {
        "summary.json": _joined(
            page=page,
            components=components,
            incidents=listed(unresolved),
            scheduled_maintenances=listed(in_summary),
            status=status,
        ),
        "status.json": _joined(page=page, status=status),
        "components.json": _joined(page=page, components=components),
        "incidents.json": _joined(page=page, incidents=listed(recent)),
        "incidents/unresolved.json": _joined(page=page, incidents=listed(unresolved)),
        "scheduled-maintenances.json": _joined(page=page, scheduled_maintenances=listed(scheduled)),
        "scheduled-maintenances/upcoming.json": _joined(
            page=page, scheduled_maintenances=listed(upcoming)
        ),
        "scheduled-maintenances/active.json": _joined(
            page=page, scheduled_maintenances=listed(active)
        ),
    }
    return {f"{API_DIR}/{name}": text for name, text in files.items()}


def iso_timestamp(at: datetime, tz: ZoneInfo) -> str:
    """A time as Statuspage writes it: milliseconds and the page's offset at that instant."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: renderers need aware times")
    return _iso_timestamp(at, tz)


# A page's JSON writes the same instants publish after publish (every listed incident's
# and update's times): remembered, as the HTML's time tags are (renderers/timefmt.py).
# Equal aware datetimes are one instant, which gives one text in a zone.
@lru_cache(maxsize=INSTANTS)
def _iso_timestamp(at: datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    text = local.isoformat(timespec="milliseconds")
    # Statuspage (Rails) writes "Z" for pages kept in UTC, "+00:00" for zones like London.
    if local.tzname() in ("UTC", "UCT"):
        return text[:-6] + "Z"
    return text


def _dumps(body: object) -> str:
    # Compact, as Statuspage serves it: clients parse it, people pipe it through jq,
    # and incidents.json stays small for the pollers that fetch it every minute.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


# Each incident object's JSON text by the identity of the object, which _INCIDENTS keeps
# while its view is unchanged: an incremental publish encodes only what changed.
_ENCODED: ByIdentity[str] = ByIdentity(8192)


def _encoded(obj: Json) -> str:
    return _ENCODED.get((obj,), (), lambda: _dumps(obj))


def _joined(**members: str) -> str:
    """An object from its members' JSON texts, in order: the text `_dumps` would give."""
    return "{" + ",".join(f"{_dumps(key)}:{text}" for key, text in members.items()) + "}"


def _created_key(i: IncidentView) -> tuple[datetime, int]:
    return (i.created_at, i.number)


def _scheduled_key(m: IncidentView) -> tuple[datetime, int]:
    return (m.scheduled_for or m.created_at, m.number)


# Incident objects by the identity of their view: an incremental publish maps only the
# incidents that changed (renderers/memo.py).
_INCIDENTS: ByIdentity[Json] = ByIdentity(8192)


class Objects:
    """The one mapping from snapshot values to Statuspage objects: the v2 files, the
    webhook payloads (renderers/webhooks.py) and the v1 API all build theirs here.
    Each incident is mapped once per instance."""

    def __init__(
        self,
        *,
        page_id: str,
        page_url: str,
        tz: ZoneInfo,
        only_if_degraded: Mapping[str, bool] | None = None,
    ) -> None:
        self.tz = tz
        self.page_id = page_id
        self.base_url = page_url.rstrip("/")
        # An incident's components carry no only_show_if_degraded of their own.
        self.only_if_degraded = dict(only_if_degraded or {})
        self._cache: dict[int, Json] = {}

    def time(self, at: datetime | None) -> str | None:
        """A time as Statuspage writes it, or None."""
        return None if at is None else iso_timestamp(at, self.tz)

    def component(self, c: ComponentView | AffectedView) -> Json:
        """A component object."""
        return {
            "id": c.code,
            "name": c.name,
            "status": c.status,
            "created_at": self.time(c.created_at),
            "updated_at": self.time(c.updated_at),
            "position": c.position,
            "description": c.description,
            "showcase": c.showcase,
            "start_date": c.start_date.isoformat() if c.start_date else None,
            "group_id": c.group_code,
            "page_id": self.page_id,
            "group": False,
            "only_show_if_degraded": (
                c.only_show_if_degraded
                if isinstance(c, ComponentView)
                else self.only_if_degraded.get(c.code, False)
            ),
        }

    def group(self, g: GroupView) -> Json:
        """A component group object (in the same list as the components)."""
        return {
            "id": g.code,
            "name": g.name,
            "status": g.status,
            "created_at": self.time(g.created_at),
            "updated_at": self.time(g.updated_at),
            "position": g.position,
            "description": g.description,
            "showcase": False,
            "start_date": None,
            "group_id": None,
            "page_id": self.page_id,
            "group": True,
            "only_show_if_degraded": False,
            "components": [c.code for c in g.components],
        }

    def incidents(self, items: Iterable[IncidentView]) -> list[Json]:
        """Incident (or maintenance) objects, in the order given."""
        return [self.incident(i) for i in items]

    def incident(self, i: IncidentView) -> Json:
        """An incident or maintenance object, updates newest first (shared: don't mutate)."""
        cached = self._cache.get(i.number)
        if cached is not None:
            return cached
        flags = tuple(self.only_if_degraded.get(a.code, False) for a in i.components)
        made = _INCIDENTS.get(
            (i,),
            (type(self), self.page_id, self.base_url, self.tz, flags),
            lambda: self._incident(i),
        )
        self._cache[i.number] = made
        return made

    def _incident(self, i: IncidentView) -> Json:
        number = str(i.number)
        maintenance = i.kind == Kind.MAINTENANCE
        # Stable sort: updates that share a display time keep the snapshot's order.
        updates = sorted(i.updates, key=lambda u: u.display_at, reverse=True)
        body: Json = {
            "id": number,
            "name": i.title,
            "status": i.status,
            "created_at": self.time(i.created_at),
            "updated_at": self.time(i.updated_at),
            "monitoring_at": self.time(i.monitoring_at),
            "resolved_at": self.time(i.resolved_at),
            "impact": "maintenance" if maintenance else i.impact,
            "shortlink": f"{self.base_url}/incidents/{number}",
            "started_at": self.time(i.started_at),
            "page_id": self.page_id,
            "incident_updates": [self.update(u, number) for u in updates],
            "components": [self.component(a) for a in i.components],
        }
        if i.postmortem is not None:
            # Statuspage's v2 files have no postmortem fields; its incident objects
            # (the v1 API, webhooks) have these, which clients read to show one.
            body.update(self.postmortem(i.postmortem))
        if maintenance:
            body["scheduled_for"] = self.time(i.scheduled_for)
            body["scheduled_until"] = self.time(i.scheduled_until)
        return body

    def postmortem(self, p: PostmortemView) -> Json:
        """Statuspage's `postmortem_*` fields of an incident with a published postmortem."""
        return {
            "postmortem_body": p.body,
            "postmortem_body_last_updated_at": self.time(p.body_updated_at),
            "postmortem_published_at": self.time(p.published_at),
            "postmortem_ignored": False,
            "postmortem_notified_subscribers": p.notified_subscribers,
            "postmortem_notified_twitter": False,
        }

    def update(self, u: UpdateView, incident_id: str) -> Json:
        """An incident update object."""
        affected = [
            {
                "code": ch.code,
                "name": ch.name,
                "old_status": ch.old_status,
                "new_status": ch.new_status,
            }
            for ch in u.changes
        ]
        return {
            "id": u.code,
            "status": u.status,
            "body": u.body,
            "incident_id": incident_id,
            "created_at": self.time(u.created_at),
            "updated_at": self.time(u.updated_at),
            "display_at": self.time(u.display_at),
            "affected_components": affected or None,
            "deliver_notifications": u.deliver_notifications,
            "custom_tweet": None,
            "tweet_id": None,
        }


class _Api(Objects):
    """The v2 files' view of a snapshot: its page object and its flat component list."""

    def __init__(self, snapshot: Snapshot) -> None:
        info = snapshot.page
        super().__init__(
            page_id=info.id,
            page_url=info.url,
            tz=snapshot.tz,
            only_if_degraded={c.code: c.only_show_if_degraded for c in snapshot.components},
        )
        self.page: Json = {
            "id": info.id,
            "name": info.name,
            "url": info.url,
            "time_zone": info.time_zone,
            "updated_at": self.time(snapshot.updated_at),
        }
        self.snapshot = snapshot

    def components(self) -> list[Json]:
        """The flat list: each group, then its components, in page order."""
        out: list[Json] = []
        for item in self.snapshot.layout:
            if isinstance(item, GroupView):
                out.append(self.group(item))
                out.extend(self.component(c) for c in item.components)
            else:
                out.append(self.component(item))
        return out
