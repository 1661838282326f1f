"""maintenance.ics: maintenance windows as an iCalendar feed people subscribe to."""

from __future__ import annotations

import heapq
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from storage.rules import STATUS_LABELS, MaintenanceStatus
from storage.snapshot import IncidentView, Snapshot

if TYPE_CHECKING:
    from icalendar import Event

# Calendars re-fetch the whole file; recent history plus everything still open is
# what subscribers look at, and it keeps a render fast after years of maintenance.
CALENDAR_LIMIT = 100
REFRESH = timedelta(hours=1)
# iCalendar TEXT may not hold control characters other than tab; newlines are escaped
# by icalendar, carriage returns dropped so CRLF bodies come out as one line break.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def render_calendar(snapshot: Snapshot) -> bytes:
    """maintenance.ics: one event per maintenance window, cancelled ones marked so."""
    # Most publishes change an incident, not a maintenance, and icalendar is slow
    # (~0.2 ms an event): keep the last calendar while its inputs are the same.
    # The snapshot cache hands back the same frozen views for unchanged
    # maintenances, so this comparison is mostly identity checks.
    key = (snapshot.page, snapshot.maintenances)
    if _last is not None and _last[0] == key:
        return _last[1]
    # A component's change alters every maintenance that names it (its status now, for
    # the JSON); the calendar shows none of the components, so compare without them.
    shown = (snapshot.page, tuple(map(_shown, snapshot.maintenances)))
    if _last is not None and _last[2] == shown:
        _remember(key, _last[1], shown)
        return _last[1]
    data = _render_calendar(snapshot)
    _remember(key, data, shown)
    return data


_last: tuple[tuple[object, ...], bytes, tuple[object, ...]] | None = None


def _shown(m: IncidentView) -> tuple[object, ...]:
    """What the calendar shows of a maintenance (`_event`, and which are chosen)."""
    return (
        m.number,
        m.title,
        m.status,
        m.created_at,
        m.updated_at,
        m.started_at,
        m.scheduled_for,
        m.scheduled_until,
        m.updates,
    )


def _remember(key: tuple[object, ...], data: bytes, shown: tuple[object, ...]) -> None:
    global _last
    _last = (key, data, shown)


def _render_calendar(snapshot: Snapshot) -> bytes:
    # Loaded here, by the first render of a calendar (~25 ms): `statusbot render` loads
    # it after forking, in the process that renders the page-wide files.
    from icalendar import Calendar, vText

    page = snapshot.page
    base = page.url.rstrip("/")
    host = urlsplit(page.url).hostname or "statusbot"
    chosen = heapq.nlargest(CALENDAR_LIMIT, snapshot.maintenances, key=_start_key)
    numbers = {m.number for m in chosen}
    chosen += [m for m in snapshot.maintenances if not m.closed and m.number not in numbers]

    cal = Calendar()
    cal.add("prodid", "-//statusbot//maintenance calendar//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    name = _text(page.name)
    cal.add("x-wr-calname", vText(f"{name} maintenance"))
    cal.add("x-wr-caldesc", vText(f"Scheduled maintenance on {name}: {page.url}"))
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", vText("PT1H"))
    for m in sorted(chosen, key=_start_key):
        cal.add_component(_event(m, base=base, host=host))
    data: bytes = cal.to_ical()
    return data


def _start_key(m: IncidentView) -> tuple[datetime, int]:
    return (_start(m), m.number)


def _start(m: IncidentView) -> datetime:
    return m.scheduled_for or m.started_at


def _text(text: str) -> str:
    return _CONTROL.sub("", text)


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(microsecond=0)


def _event(m: IncidentView, *, base: str, host: str) -> Event:
    from icalendar import Event

    updates = sorted(m.updates, key=lambda u: u.display_at, reverse=True)
    # Stamped with the maintenance's own change time, never the clock: the same
    # maintenance gives the same bytes, and a change moves LAST-MODIFIED and SEQUENCE.
    changed = _utc(max([m.updated_at, *(u.updated_at for u in updates)]))
    event = Event()
    event.add("uid", f"maintenance-{m.number}@{host}")
    event.add("dtstamp", changed)
    event.add("created", _utc(m.created_at))
    event.add("last-modified", changed)
    event.add("sequence", max(len(updates) - 1, 0))
    start = _utc(_start(m))
    event.add("dtstart", start)
    if m.scheduled_until is not None and m.scheduled_until > start:
        event.add("dtend", _utc(m.scheduled_until))
    event.add("summary", _text(m.title))
    if updates:
        latest = updates[0]
        label = STATUS_LABELS.get(latest.status, latest.status)
        event.add("description", _text(f"{label} - {latest.body}"))
    event.add("url", f"{base}/incidents/{m.number}.html")
    cancelled = m.status == MaintenanceStatus.CANCELLED
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    # Maintenance is something to know about, not time the subscriber is busy.
    event.add("transp", "TRANSPARENT")
    event.add("categories", ["Maintenance"])
    return event
