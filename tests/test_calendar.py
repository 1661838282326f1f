"""maintenance.ics: read back by icalendar, times in UTC, stable for unchanged input."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from renderers.calendar import CALENDAR_LIMIT, render_calendar
from storage.rules import ALL_OK
from storage.snapshot import IncidentView, PageInfo, Snapshot, UpdateView
from tests.views import update

URL = "https://status.example.com"
SYDNEY = ZoneInfo("Australia/Sydney")
# The example's database maintenance: scheduled Sep 15, 17:48 AEST for Friday 8pm ET.
SCHEDULED = datetime(2017, 9, 15, 17, 48, tzinfo=SYDNEY)
START = datetime(2017, 9, 15, 20, 0, tzinfo=ZoneInfo("America/New_York"))
END = datetime(2017, 9, 18, 0, 0, tzinfo=SYDNEY)


def sydney(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=SYDNEY)


def maintenance(
    number: int,
    *,
    status: str = "scheduled",
    start: datetime = START,
    end: datetime | None = END,
    updates: Sequence[UpdateView] | None = None,
    title: str = "Database maintenance",
) -> IncidentView:
    ups = tuple(updates) if updates is not None else (update("s", status, "Planned.", SCHEDULED),)
    ups = tuple(sorted(ups, key=lambda u: u.display_at, reverse=True))
    return IncidentView(
        number=number,
        kind="maintenance",
        title=title,
        status=status,
        impact="maintenance",
        created_at=SCHEDULED,
        updated_at=ups[0].updated_at,
        started_at=start,
        monitoring_at=None,
        resolved_at=None,
        scheduled_for=start,
        scheduled_until=end,
        auto=True,
        components=(),
        updates=ups,
    )


def snapshot(
    maintenances: Sequence[IncidentView] = (),
    incidents: Sequence[IncidentView] = (),
    *,
    name: str = "Vero",
    now: datetime = SCHEDULED,
) -> Snapshot:
    return Snapshot(
        page=PageInfo(id="vero1234", name=name, url=URL, time_zone="Australia/Sydney"),
        generated_at=now,
        status=ALL_OK,
        components=(),
        groups=(),
        layout=(),
        incidents=tuple(incidents),
        maintenances=tuple(maintenances),
    )


def the_example() -> IncidentView:
    """The example's maintenance with its four updates."""
    return maintenance(
        7,
        status="completed",
        updates=[
            update("s", "scheduled", "We will be performing maintenance.", SCHEDULED),
            update("p", "in_progress", "Starting now.", sydney(2017, 9, 16, 10, 2)),
            update("v", "verifying", "Verifying.", sydney(2017, 9, 17, 3, 12)),
            update("c", "completed", "All work has been completed.", END + timedelta(minutes=13)),
        ],
    )


def events(data: bytes) -> dict[str, dict[str, object]]:
    cal = Calendar.from_ical(data)
    out: dict[str, dict[str, object]] = {}
    for ev in cal.walk("VEVENT"):
        out[str(ev["uid"])] = {
            key: ev.decoded(key)
            for key in ("dtstart", "dtend", "dtstamp", "last-modified", "created", "sequence")
            if key in ev
        } | {
            key: str(ev[key])
            for key in ("summary", "description", "url", "status", "transp")
            if key in ev
        }
    return out


def test_round_trip_with_utc_times() -> None:
    data = render_calendar(snapshot([the_example()]))
    assert isinstance(data, bytes)
    cal = Calendar.from_ical(data)
    assert str(cal["version"]) == "2.0"
    assert cal["prodid"]
    assert cal["x-wr-calname"] == "Vero maintenance"
    (event,) = events(data).values()
    assert event["dtstart"] == datetime(2017, 9, 16, 0, 0, tzinfo=UTC)  # Fri 8pm EDT
    assert event["dtend"] == datetime(2017, 9, 17, 14, 0, tzinfo=UTC)  # Sep 18, 00:00 AEST
    assert b"DTSTART:20170916T000000Z" in data
    assert b"DTEND:20170917T140000Z" in data


def test_event_fields() -> None:
    (uid, event), *_ = events(render_calendar(snapshot([the_example()]))).items()
    assert uid == "maintenance-7@status.example.com"
    assert event["summary"] == "Database maintenance"
    assert event["description"] == "Completed - All work has been completed."
    assert event["url"] == f"{URL}/incidents/7.html"
    assert event["status"] == "CONFIRMED"
    assert event["transp"] == "TRANSPARENT"
    changed = datetime(2017, 9, 17, 14, 13, tzinfo=UTC)  # the last update, Sep 18 00:13 AEST
    assert event["last-modified"] == changed
    assert event["dtstamp"] == changed
    assert event["created"] == SCHEDULED.astimezone(UTC)


def test_sequence_grows_with_updates() -> None:
    ups = [
        update(f"u{k}", "scheduled", f"Note {k}", SCHEDULED + timedelta(hours=k)) for k in range(4)
    ]
    seqs = [
        events(render_calendar(snapshot([maintenance(1, updates=ups[: k + 1])])))[
            "maintenance-1@status.example.com"
        ]["sequence"]
        for k in range(4)
    ]
    assert seqs == [0, 1, 2, 3]


def test_cancelled_stays_with_status_cancelled() -> None:
    cancelled = maintenance(2, status="cancelled", start=START + timedelta(days=7))
    found = events(render_calendar(snapshot([cancelled, the_example()])))
    assert found["maintenance-2@status.example.com"]["status"] == "CANCELLED"
    assert found["maintenance-7@status.example.com"]["status"] == "CONFIRMED"


def test_only_maintenances_and_one_event_each() -> None:
    found = events(render_calendar(snapshot([maintenance(n) for n in (3, 4, 5)])))
    assert sorted(found) == [f"maintenance-{n}@status.example.com" for n in (3, 4, 5)]
    assert len(Calendar.from_ical(render_calendar(snapshot())).walk("VEVENT")) == 0


def test_text_is_escaped_and_survives() -> None:
    title = "DB; upgrade, part \\1\nline two <script>"
    found = events(render_calendar(snapshot([maintenance(1, title=title)], name="A, B; C")))
    assert found["maintenance-1@status.example.com"]["summary"] == title
    raw = render_calendar(snapshot([maintenance(1, title=title + "\x00\x07")], name="A, B; C"))
    assert b"SUMMARY:DB\\; upgrade\\, part \\\\1\\nline two <script>\r\n" in raw
    assert b"X-WR-CALNAME:A\\, B\\; C maintenance" in raw


def test_open_ended_window_has_no_dtend() -> None:
    (event,) = events(render_calendar(snapshot([maintenance(1, end=None)]))).values()
    assert "dtend" not in event
    assert event["dtstart"] == START.astimezone(UTC)


@pytest.mark.parametrize("extra", [0, 30])
def test_recent_history_and_everything_open(extra: int) -> None:
    old = [
        maintenance(n, status="completed", start=START - timedelta(days=n))
        for n in range(1, CALENDAR_LIMIT + extra + 1)
    ]
    # Started long ago and still running: older than the cut, kept because it is open.
    running = maintenance(999, status="in_progress", start=START - timedelta(days=5000))
    found = events(render_calendar(snapshot([*old, running])))
    assert len(found) == min(len(old), CALENDAR_LIMIT) + 1
    assert "maintenance-999@status.example.com" in found
    assert "maintenance-1@status.example.com" in found


def test_same_input_same_bytes_whenever_it_runs() -> None:
    first = render_calendar(snapshot([the_example()], now=SCHEDULED))
    assert first == render_calendar(snapshot([the_example()], now=SCHEDULED))
    assert first == render_calendar(snapshot([the_example()], now=END + timedelta(days=30)))
