"""Times and days as the page shows them, in the page's zone.

'Sep 15, 06:56 AEST' for an instant, 'Sep 15, 2017' for a day, 'September 2017'
for a month, each instant wrapped in `<time datetime="…">` with its ISO form
and the zone's offset, so machines read what people read.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache

from markupsafe import Markup, escape

# A zone without a letter abbreviation has a numeric tzname ('-03', '+0530').
_NUMERIC = re.compile(r"^([+-])(\d{2})(\d{2})?$")


def local(at: datetime, tz: tzinfo) -> datetime:
    """An aware instant in the page's zone."""
    return at.astimezone(tz)


def local_day(at: datetime, tz: tzinfo) -> date:
    """The calendar day an instant falls on in the page's zone."""
    return at.astimezone(tz).date()


# What %b writes for each month, looked up rather than formatted: these run for every
# instant a page shows. Taken from strftime itself, so they are what %b would give.
_MONTH_ABBR = ("", *(date(2000, month, 1).strftime("%b") for month in range(1, 13)))


def zone_name(at: datetime) -> str:
    """The zone abbreviation of a local time: 'AEST', or 'UTC-3' where the zone has none."""
    return _zone_label(at.tzname() or "")


@lru_cache(maxsize=256)
def _zone_label(name: str) -> str:
    match = _NUMERIC.match(name)
    if not match:
        return name
    sign, hours, minutes = match.groups()
    text = f"UTC{sign}{int(hours)}"
    return text + (f":{minutes}" if minutes and minutes != "00" else "")


# A page shows the same instants again and again (an update's time on its incident's
# page, on index.html, in the feeds; a publish after one change shows them all again):
# each is formatted once per zone. Equal instants format alike in a zone, so keys that
# compare equal (the same moment in two zones) share an entry safely.
INSTANTS = 32_768


def when(at: datetime, tz: tzinfo) -> str:
    """An instant as the page shows it: 'Sep 15, 06:56 AEST'."""
    return _when(at, tz)


@lru_cache(maxsize=INSTANTS)
def _when(at: datetime, tz: tzinfo) -> str:
    return _shown(at.astimezone(tz))


def _shown(t: datetime) -> str:
    """A local time as `when` shows it ('Sep 15, 06:56 AEST')."""
    return f"{_MONTH_ABBR[t.month]} {t.day}, {t.hour:02d}:{t.minute:02d} {zone_name(t)}"


def clock(at: datetime, tz: tzinfo) -> str:
    """An instant without its zone: 'Sep 15, 06:56'."""
    t = at.astimezone(tz)
    return f"{t:%b} {t.day}, {t:%H:%M}"


def day_label(day: date) -> str:
    """A day as the page heads it: 'Sep 15, 2017'."""
    return f"{day:%b} {day.day}, {day.year}"


def short_day_label(day: date) -> str:
    """A day of the current year, as its uptime bar labels it: 'Sep 15'."""
    return f"{day:%b} {day.day}"


def month_label(day: date) -> str:
    """A month as the history heads it: 'September 2017'."""
    return f"{day:%B %Y}"


def iso(at: datetime, tz: tzinfo) -> str:
    """ISO 8601 with the page's offset: '2017-09-15T06:56:00+10:00'."""
    return at.astimezone(tz).replace(microsecond=0).isoformat()


def time_tag(at: datetime, tz: tzinfo, text: str | None = None) -> Markup:
    """`<time datetime="ISO">Sep 15, 06:56 AEST</time>` (or with the given text)."""
    return _time_tag(at, tz, text)


@lru_cache(maxsize=INSTANTS, typed=True)  # typed: a Markup `text` is not a str one
def _time_tag(at: datetime, tz: tzinfo, text: str | None) -> Markup:
    # Plain f-strings: this runs thousands of times a render, and only `text` may
    # come from elsewhere (the rest is digits, month names and zone letters).
    t = at.astimezone(tz)
    shown = _shown(t) if text is None else escape(text)
    return Markup(f'<time datetime="{t.replace(microsecond=0).isoformat()}">{shown}</time>')


def day_tag(day: date) -> Markup:
    """`<time datetime="2017-09-15">Sep 15, 2017</time>`."""
    return Markup(f'<time datetime="{day.isoformat()}">{day_label(day)}</time>')


def window_tag(start: datetime, end: datetime | None, tz: tzinfo) -> Markup:
    """A span as one phrase: 'Sep 16, 10:00 – Sep 18, 00:00 AEST', 'Sep 16, 10:00 – 14:00 AEST'.

    The zone is written once when both ends share it, at both ends across a DST change.
    """
    return _window_tag(start, end, tz)


@lru_cache(maxsize=INSTANTS)
def _window_tag(start: datetime, end: datetime | None, tz: tzinfo) -> Markup:
    if end is None:
        return time_tag(start, tz)
    a, b = start.astimezone(tz), end.astimezone(tz)
    same_zone = zone_name(a) == zone_name(b)
    first = clock(a, tz) if same_zone else when(a, tz)
    last = f"{b:%H:%M} {zone_name(b)}" if same_zone and a.date() == b.date() else when(b, tz)
    return Markup(f"{time_tag(a, tz, first)} – {time_tag(b, tz, last)}")


def days_back(today: date, count: int) -> list[date]:
    """`count` days ending with `today`, newest first."""
    return [today - timedelta(days=k) for k in range(count)]
