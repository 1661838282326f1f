"""WHEN parsing: every accepted form in three zones, weekdays, DST, abbreviations, bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.errors import CommandError
from commands.when import ZONE_ABBREVIATIONS, parse_date, parse_when, resolve_local

# Wednesday 2026-07-01 12:00 UTC: 22:00 AEST in Sydney, 08:00 EDT in New York.
NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
ZONES = ["Australia/Sydney", "America/New_York", "UTC"]
SYDNEY, NEW_YORK = ZoneInfo("Australia/Sydney"), ZoneInfo("America/New_York")


def at(
    zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """The UTC instant of a wall-clock time in `zone`."""
    clock = time(hour, minute, second)
    return datetime.combine(date(year, month, day), clock, ZoneInfo(zone)).astimezone(UTC)


def when(text: str, zone: str = "America/New_York", **kwargs: object) -> datetime:
    return parse_when(text, now=NOW, tz=ZoneInfo(zone), **kwargs)  # type: ignore[arg-type]


def error_for(text: str, zone: str = "America/New_York", **kwargs: object) -> str:
    with pytest.raises(CommandError) as caught:
        when(text, zone, **kwargs)
    return caught.value.message


# --- Accepted forms -------------------------------------------------------------------------

# Read on the commander's own calendar and clock: every zone's "today" is 2026-07-01 here.
LOCAL_FORMS = [
    ("today 14:00", (2026, 7, 1, 14, 0)),
    ("tomorrow 9am", (2026, 7, 2, 9, 0)),
    ("TOMORROW 9AM", (2026, 7, 2, 9, 0)),
    ("  tomorrow   9am  ", (2026, 7, 2, 9, 0)),
    ("tomorrow\u00a09am", (2026, 7, 2, 9, 0)),
    ("9am tomorrow", (2026, 7, 2, 9, 0)),
    ("tomorrow at 9am", (2026, 7, 2, 9, 0)),
    ("tmrw 9am", (2026, 7, 2, 9, 0)),
    ("yesterday 14:00", (2026, 6, 30, 14, 0)),
    ("tonight 10pm", (2026, 7, 1, 22, 0)),
    ("8pm", (2026, 7, 1, 20, 0)),
    ("20:00", (2026, 7, 1, 20, 0)),
    ("8:30pm", (2026, 7, 1, 20, 30)),
    ("8:30 PM", (2026, 7, 1, 20, 30)),
    ("8:00\u202fpm", (2026, 7, 1, 20, 0)),
    ("8.30pm", (2026, 7, 1, 20, 30)),
    ("8 pm", (2026, 7, 1, 20, 0)),
    ("8 p.m.", (2026, 7, 1, 20, 0)),
    ("7 a.m.", (2026, 7, 1, 7, 0)),
    ("tomorrow at 9am.", (2026, 7, 2, 9, 0)),
    ("12am", (2026, 7, 1, 0, 0)),
    ("12pm", (2026, 7, 1, 12, 0)),
    ("noon", (2026, 7, 1, 12, 0)),
    ("20:00:15", (2026, 7, 1, 20, 0, 15)),
    ("2026-12-01 20:00", (2026, 12, 1, 20, 0)),
    ("2026-12-01T20:00", (2026, 12, 1, 20, 0)),
    ("2026-12-01t20:00:00", (2026, 12, 1, 20, 0)),
    ("2026/12/01 20:00", (2026, 12, 1, 20, 0)),
    ("2026-12-01 8pm", (2026, 12, 1, 20, 0)),
    ("Dec 1 8pm", (2026, 12, 1, 20, 0)),
    ("dec 1, 8pm", (2026, 12, 1, 20, 0)),
    ("1 Dec 2026 20:00", (2026, 12, 1, 20, 0)),
    ("December 1st, 2026 at 8pm", (2026, 12, 1, 20, 0)),
    ("1st of December 2026 20:00", (2026, 12, 1, 20, 0)),
    ("8pm on Dec 1", (2026, 12, 1, 20, 0)),
    ("Tue Dec 1 2026 20:00", (2026, 12, 1, 20, 0)),
    ("Sept 1 9am", (2026, 9, 1, 9, 0)),
    ("friday 20:00", (2026, 7, 3, 20, 0)),
    ("Fri 8pm", (2026, 7, 3, 20, 0)),
    ("thurs 9am", (2026, 7, 2, 9, 0)),
    ("next fri 9am", (2026, 7, 3, 9, 0)),
    ("next wed 11pm", (2026, 7, 8, 23, 0)),
    ("last fri 9am", (2026, 6, 26, 9, 0)),
    ("last wed 7am", (2026, 6, 24, 7, 0)),
]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(("text", "local"), LOCAL_FORMS)
def test_local_forms(zone: str, text: str, local: tuple[int, ...]) -> None:
    result = when(text, zone)
    assert result == at(zone, *local)
    assert result.tzinfo is UTC


# Fixed instants, whatever the commander's zone.
INSTANTS = [
    ("now", NOW),
    ("NOW", NOW),
    ("now UTC", NOW),
    ("in 2h", NOW + timedelta(hours=2)),
    ("in 30m", NOW + timedelta(minutes=30)),
    ("in 90 minutes", NOW + timedelta(minutes=90)),
    ("in 1 hour", NOW + timedelta(hours=1)),
    ("in an hour", NOW + timedelta(hours=1)),
    ("in 2 days", NOW + timedelta(days=2)),
    ("in a week", NOW + timedelta(weeks=1)),
    ("in 1d 2h", NOW + timedelta(days=1, hours=2)),
    ("in 1h30m", NOW + timedelta(minutes=90)),
    ("in 1 hour and 30 minutes", NOW + timedelta(minutes=90)),
    ("in 0m", NOW),
    ("2h ago", NOW - timedelta(hours=2)),
    ("30 minutes ago", NOW - timedelta(minutes=30)),
    ("a day ago", NOW - timedelta(days=1)),
    ("2026-12-01T20:00:00+01:00", datetime(2026, 12, 1, 19, 0, tzinfo=UTC)),
    ("2026-12-01T20:00Z", datetime(2026, 12, 1, 20, 0, tzinfo=UTC)),
    ("2026-12-01T20:00:00.250Z", datetime(2026, 12, 1, 20, 0, 0, 250000, tzinfo=UTC)),
    ("2026-12-01T20:00-0500", datetime(2026, 12, 2, 1, 0, tzinfo=UTC)),
    ("2026-12-01 20:00 +05:30", datetime(2026, 12, 1, 14, 30, tzinfo=UTC)),
    ("2026-12-01 20:00 -03", datetime(2026, 12, 1, 23, 0, tzinfo=UTC)),
    ("2026-12-01 20:00 UTC", datetime(2026, 12, 1, 20, 0, tzinfo=UTC)),
    ("2026-12-01 20:00 GMT", datetime(2026, 12, 1, 20, 0, tzinfo=UTC)),
    ("2026-12-01 20:00 z", datetime(2026, 12, 1, 20, 0, tzinfo=UTC)),
    ("2026-12-01 20:00 Europe/Berlin", datetime(2026, 12, 1, 19, 0, tzinfo=UTC)),
    ("2026-12-01 20:00 europe/berlin", datetime(2026, 12, 1, 19, 0, tzinfo=UTC)),
    ("Fri 8pm ET", at("America/New_York", 2026, 7, 3, 20, 0)),
    ("tomorrow 03:00 AEST", at("Australia/Sydney", 2026, 7, 2, 3, 0)),
    ("Dec 1 8pm PT", at("America/Los_Angeles", 2026, 12, 1, 20, 0)),
    ("Dec 1 8pm PST", at("America/Los_Angeles", 2026, 12, 1, 20, 0)),
    ("2026-07-03 20:00 EDT", at("America/New_York", 2026, 7, 3, 20, 0)),
    ("2026-12-01 20:00 EST", at("America/New_York", 2026, 12, 1, 20, 0)),
    ("2026-12-01 20:00 AEDT", at("Australia/Sydney", 2026, 12, 1, 20, 0)),
    ("2026-07-03 20:00 AEST", at("Australia/Sydney", 2026, 7, 3, 20, 0)),
    ("2026-07-03 20:00 CEST", at("Europe/Paris", 2026, 7, 3, 20, 0)),
    ("2026-07-03 20:00 BST", at("Europe/London", 2026, 7, 3, 20, 0)),
    ("2026-07-03 20:00 IST", datetime(2026, 7, 3, 14, 30, tzinfo=UTC)),
    ("2026-07-03 20:00 BRT", datetime(2026, 7, 3, 23, 0, tzinfo=UTC)),
]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(("text", "expected"), INSTANTS)
def test_instants(zone: str, text: str, expected: datetime) -> None:
    result = when(text, zone)
    assert result == expected
    assert result.tzinfo is UTC


def test_a_given_zone_frames_the_day_words() -> None:
    # Friday 14:00 in New York is already Saturday 04:00 in Sydney.
    now = datetime(2026, 7, 3, 18, 0, tzinfo=UTC)
    assert parse_when("fri 8pm ET", now=now, tz=SYDNEY) == at("America/New_York", 2026, 7, 3, 20)
    assert parse_when("fri 8pm", now=now, tz=SYDNEY) == at("Australia/Sydney", 2026, 7, 10, 20)
    assert parse_when("today 9am AEST", now=now, tz=NEW_YORK) == at(
        "Australia/Sydney", 2026, 7, 4, 9
    )


def test_relative_times_are_elapsed_time_across_dst() -> None:
    before_fall_back = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
    result = parse_when("in 1 day", now=before_fall_back, tz=NEW_YORK)
    assert result == before_fall_back + timedelta(hours=24)


# --- Weekdays and year-less dates: future or past -------------------------------------------

WEEKDAYS = [  # New York is Wed 08:00; Sydney is Wed 22:00.
    ("America/New_York", "wed 9am", "future", (2026, 7, 1, 9)),
    ("America/New_York", "wed 8am", "future", (2026, 7, 8, 8)),
    ("America/New_York", "wed 7am", "future", (2026, 7, 8, 7)),
    ("America/New_York", "this wed 9am", "future", (2026, 7, 1, 9)),
    ("America/New_York", "fri 9am", "future", (2026, 7, 3, 9)),
    ("America/New_York", "tue 9am", "future", (2026, 7, 7, 9)),
    ("America/New_York", "wed 7am", "past", (2026, 7, 1, 7)),
    ("America/New_York", "wed 8am", "past", (2026, 7, 1, 8)),
    ("America/New_York", "wed 9am", "past", (2026, 6, 24, 9)),
    ("America/New_York", "fri 9am", "past", (2026, 6, 26, 9)),
    ("America/New_York", "tue 9am", "past", (2026, 6, 30, 9)),
    ("America/New_York", "next wed 9am", "past", (2026, 7, 8, 9)),
    ("America/New_York", "last wed 9am", "future", (2026, 6, 24, 9)),
    ("Australia/Sydney", "wed 9pm", "future", (2026, 7, 8, 21)),
    ("Australia/Sydney", "wed 11pm", "future", (2026, 7, 1, 23)),
    ("Australia/Sydney", "thu 9am", "future", (2026, 7, 2, 9)),
    ("Australia/Sydney", "wed 9pm", "past", (2026, 7, 1, 21)),
    ("Australia/Sydney", "wed 11pm", "past", (2026, 6, 24, 23)),
    ("Australia/Sydney", "tue 11pm", "past", (2026, 6, 30, 23)),
    ("UTC", "wed 11am", "future", (2026, 7, 8, 11)),
    ("UTC", "wed 1pm", "future", (2026, 7, 1, 13)),
    ("UTC", "wed 11am", "past", (2026, 7, 1, 11)),
    ("UTC", "wed 1pm", "past", (2026, 6, 24, 13)),
    # A date without a year: its next (future) or last (past) occurrence, today included.
    ("UTC", "Jan 3 9am", "future", (2027, 1, 3, 9)),
    ("UTC", "Jan 3 9am", "past", (2026, 1, 3, 9)),
    ("UTC", "Dec 1 8pm", "future", (2026, 12, 1, 20)),
    ("UTC", "Dec 1 8pm", "past", (2025, 12, 1, 20)),
    ("UTC", "Jul 1 7am", "future", (2026, 7, 1, 7)),
    ("UTC", "Jul 1 3pm", "past", (2026, 7, 1, 15)),
]


@pytest.mark.parametrize(("zone", "text", "prefer", "local"), WEEKDAYS)
def test_weekday_and_yearless_dates_follow_prefer(
    zone: str, text: str, prefer: str, local: tuple[int, ...]
) -> None:
    assert when(text, zone, prefer=prefer) == at(zone, *local)


# --- DST ------------------------------------------------------------------------------------

GAPS = [
    ("America/New_York", "2026-03-08 02:30", "2026-03-08T07:30Z"),
    ("America/New_York", "2026-03-08 02:30 ET", "2026-03-08T07:30Z"),
    ("America/New_York", "2026-03-08 02:30 EST", "2026-03-08T07:30Z"),
    ("UTC", "Mar 8 2026 2:30am ET", "2026-03-08T07:30Z"),
    ("Australia/Sydney", "2026-10-04 02:30", "2026-10-03T16:30Z"),
    ("UTC", "2026-10-04 02:30 AET", "2026-10-03T16:30Z"),
    ("UTC", "2026-10-04 02:30 Australia/Sydney", "2026-10-03T16:30Z"),
]


@pytest.mark.parametrize(("zone", "text", "example"), GAPS)
def test_a_time_in_a_spring_forward_gap_is_refused(zone: str, text: str, example: str) -> None:
    message = error_for(text, zone)
    assert "skipped when the clocks go forward" in message
    assert "explicit UTC time or offset" in message
    assert example in message


OVERLAPS = [
    ("America/New_York", "2026-11-01 01:30", "2026-11-01T01:30-04:00", "2026-11-01T01:30-05:00"),
    ("UTC", "Nov 1 2026 1:30am ET", "2026-11-01T01:30-04:00", "2026-11-01T01:30-05:00"),
    ("Australia/Sydney", "2026-04-05 02:30", "2026-04-05T02:30+11:00", "2026-04-05T02:30+10:00"),
    ("UTC", "2026-04-05 02:30 AET", "2026-04-05T02:30+11:00", "2026-04-05T02:30+10:00"),
]


@pytest.mark.parametrize(("zone", "text", "first", "second"), OVERLAPS)
def test_a_time_in_a_fall_back_overlap_is_refused(
    zone: str, text: str, first: str, second: str
) -> None:
    message = error_for(text, zone)
    assert "happens twice" in message
    assert f"'{first}' for the first or '{second}' for the second" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01 01:30 EDT", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
        ("2026-11-01 01:30 EST", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
        ("2026-11-01T01:30-05:00", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
        ("2026-04-05 02:30 AEDT", datetime(2026, 4, 4, 15, 30, tzinfo=UTC)),
        ("2026-04-05 02:30 AEST", datetime(2026, 4, 4, 16, 30, tzinfo=UTC)),
        ("2026-03-08 01:59", datetime(2026, 3, 8, 6, 59, tzinfo=UTC)),
        ("2026-03-08 03:00", datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
    ],
)
def test_a_seasonal_abbreviation_or_offset_settles_the_overlap(
    text: str, expected: datetime
) -> None:
    assert when(text, "America/New_York") == expected


@pytest.mark.parametrize(
    ("zone", "day", "clock", "problem"),
    [
        (NEW_YORK, date(2026, 3, 8), time(2, 30), "skipped"),
        (NEW_YORK, date(2026, 11, 1), time(1, 30), "twice"),
        (SYDNEY, date(2026, 10, 4), time(2, 30), "skipped"),
        (SYDNEY, date(2026, 4, 5), time(2, 30), "twice"),
    ],
)
def test_resolve_local_refuses_gaps_and_overlaps(
    zone: ZoneInfo, day: date, clock: time, problem: str
) -> None:
    naive = datetime.combine(day, clock)
    with pytest.raises(CommandError, match=problem) as caught:
        resolve_local(naive, zone, said="the time")
    assert caught.value.message.startswith("'the time' is ")


def test_resolve_local_attaches_the_zone() -> None:
    naive = datetime.combine(date(2026, 7, 3), time(20, 0))
    result = resolve_local(naive, NEW_YORK, said="x")
    assert result.tzinfo is NEW_YORK
    assert result == at("America/New_York", 2026, 7, 3, 20)
    with pytest.raises(ValueError):
        resolve_local(result, NEW_YORK, said="x")


# --- Zone abbreviations ---------------------------------------------------------------------

REQUIRED_ABBREVIATIONS = {
    "UTC": "Etc/UTC", "Z": "Etc/UTC", "GMT": "Etc/UTC",
    "ET": "America/New_York", "EST": "America/New_York", "EDT": "America/New_York",
    "CT": "America/Chicago", "CST": "America/Chicago", "CDT": "America/Chicago",
    "MT": "America/Denver", "MST": "America/Denver", "MDT": "America/Denver",
    "PT": "America/Los_Angeles", "PST": "America/Los_Angeles", "PDT": "America/Los_Angeles",
    "AKST": "America/Anchorage", "AKDT": "America/Anchorage", "HST": "Pacific/Honolulu",
    "AEST": "Australia/Sydney", "AEDT": "Australia/Sydney", "AET": "Australia/Sydney",
    "ACST": "Australia/Adelaide", "ACDT": "Australia/Adelaide", "AWST": "Australia/Perth",
    "NZST": "Pacific/Auckland", "NZDT": "Pacific/Auckland", "JST": "Asia/Tokyo",
    "KST": "Asia/Seoul", "SGT": "Asia/Singapore", "HKT": "Asia/Hong_Kong",
    "IST": "Asia/Kolkata", "CET": "Europe/Paris", "CEST": "Europe/Paris",
    "EET": "Europe/Athens", "EEST": "Europe/Athens", "WET": "Europe/Lisbon",
    "WEST": "Europe/Lisbon", "BST": "Europe/London", "MSK": "Europe/Moscow",
    "BRT": "America/Sao_Paulo",
}  # fmt: skip


def test_abbreviations_map_to_real_zones() -> None:
    assert REQUIRED_ABBREVIATIONS.items() <= ZONE_ABBREVIATIONS.items()
    for abbreviation, key in ZONE_ABBREVIATIONS.items():
        assert abbreviation == abbreviation.upper()
        ZoneInfo(key)


@pytest.mark.parametrize("abbreviation", ["UTC", "Z", "GMT", "ET", "CT", "MT", "PT", "AET"])
@pytest.mark.parametrize("month", [1, 7])
def test_generic_abbreviations_always_fit(abbreviation: str, month: int) -> None:
    key = ZONE_ABBREVIATIONS[abbreviation]
    assert when(f"2026-{month:02d}-15 20:00 {abbreviation}") == at(key, 2026, month, 15, 20)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Jul 3 8pm EST",
            "20:00 EST on Jul 3 is not in EST: New York is on EDT then. Say ET (or EDT).",
        ),
        (
            "2026-12-01 20:00 EDT",
            "20:00 EDT on Dec 1 is not in EDT: New York is on EST then. Say ET (or EST).",
        ),
        (
            "2026-07-03 20:00 AEDT",
            "20:00 AEDT on Jul 3 is not in AEDT: Sydney is on AEST then. Say AET (or AEST).",
        ),
        (
            "Dec 1 2026 8pm AEST",
            "20:00 AEST on Dec 1 is not in AEST: Sydney is on AEDT then. Say AET (or AEDT).",
        ),
        (
            "2026-07-03 20:00 PST",
            "20:00 PST on Jul 3 is not in PST: Los Angeles is on PDT then. Say PT (or PDT).",
        ),
        (
            "2026-07-03 20:00 MST",
            "20:00 MST on Jul 3 is not in MST: Denver is on MDT then. Say MT (or MDT).",
        ),
        (
            "2026-07-03 20:00 CET",
            "20:00 CET on Jul 3 is not in CET: Paris is on CEST then. Say Europe/Paris (or CEST).",
        ),
        (
            "2026-07-03 20:00 NZDT",
            "20:00 NZDT on Jul 3 is not in NZDT: Auckland is on NZST then. Say NZT (or NZST).",
        ),
        (
            "2026-01-03 20:00 BST",
            "20:00 BST on Jan 3 is not in BST: London is on GMT then. Say Europe/London (or GMT).",
        ),
    ],
)
@pytest.mark.parametrize("zone", ZONES)
def test_a_wrong_seasonal_abbreviation_is_refused(zone: str, text: str, message: str) -> None:
    assert error_for(text, zone) == message


# --- Bad input ------------------------------------------------------------------------------

UNREADABLE = "as a time. Try '2026-12-01 20:00', 'tomorrow 9am', 'Fri 8pm ET', 'in 2h' or 'now'."

REFUSED = [
    ("", "Give a time"),
    ("   ", "Give a time"),
    ("tomorow 9am", f"I can't read 'tomorow 9am' {UNREADABLE}"),
    ("banana", "I can't read 'banana'"),
    ("utc", "I can't read"),
    ("2026", "I can't read"),
    ("next 9am", "I can't read"),
    ("at", "I can't read"),
    ("8pm XYZ", "I can't read"),
    ("8pm Mars/Olympus", "I can't read"),
    ("8pm +25:00", "I can't read"),
    ("Dec 9am 1", "I can't read"),
    ("in", "I can't read"),
    ("ago", "I can't read"),
    ("in 2 fortnights", "I can't read"),
    ("in 2h ET", "I can't read"),
    ("in two hours", "I can't read"),
    ("٣pm", "I can't read"),
    ("２０２６-12-01 20:00", "I can't read"),
    ("x" * 5000, "…' as a time"),
    ("1" * 5000, "…' as a time"),
    ("Feb 30 2026 8pm", "doesn't exist"),
    ("2026-02-30 20:00", "doesn't exist"),
    ("Feb 29 2027 9am", "doesn't exist"),
    ("2026-13-01 20:00", "doesn't exist"),
    ("1999-12-31 20:00", "outside the years 2000 to 2100"),
    ("2101-01-01 00:00", "outside the years 2000 to 2100"),
    ("Jan 1 0001 9am", "outside the years 2000 to 2100"),
    ("in 99999999 weeks", "outside the years 2000 to 2100"),
    ("999999999 weeks ago", "outside the years 2000 to 2100"),
    ("in 999999999 hours", "outside the years 2000 to 2100"),
    ("tomorrow", "'tomorrow' has no time of day: add one, e.g. 'tomorrow 9am'"),
    ("Dec 1", "has no time of day"),
    ("fri", "has no time of day"),
    ("2026-12-01", "has no time of day"),
    ("tomorrow 9", "'9' is not a clear time of day"),
    ("9", "'9' is not a clear time of day"),
    ("Dec 1 2026 8", "'8' is not a clear time of day"),
    ("midnight", "'midnight' is not a clear time of day"),
    ("25:00", "'25:00' is not a time"),
    ("13pm", "'13pm' is not a time"),
    ("0am", "'0am' is not a time"),
    ("20:60", "'20:60' is not a time"),
    ("12/01/2026 8pm", "'12/01/2026' could be read day-first or month-first"),
    ("01.12.2026 20:00", "could be read day-first or month-first"),
    ("8pm ET PT", "gives two time zones"),
    ("2026-12-01T20:00+01:00 Europe/Berlin", "gives two time zones"),
    ("ET 8pm", "put the time zone 'ET' at the end"),
    ("8pm ET tomorrow", "put the time zone 'ET' at the end"),
    ("tonight 1am", "say 'tomorrow 01:00'"),
    ("Fri Dec 1 2026 20:00", "Dec 1 is a Tuesday, not a Friday"),
]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(("text", "fragment"), REFUSED)
def test_bad_input_gets_one_clear_sentence(zone: str, text: str, fragment: str) -> None:
    message = error_for(text, zone)
    assert fragment in message
    assert "\n" not in message
    assert len(message) < 300


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError):
        parse_when("now", now=datetime.combine(date(2026, 7, 1), time()), tz=NEW_YORK)


# --- parse_date -----------------------------------------------------------------------------

TODAY = date(2026, 7, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2017-09-01", date(2017, 9, 1)),
        ("Sep 1 2017", date(2017, 9, 1)),
        ("sept 1, 2017", date(2017, 9, 1)),
        ("1 Sep 2017", date(2017, 9, 1)),
        ("1st September 2017", date(2017, 9, 1)),
        ("Fri Sep 1 2017", date(2017, 9, 1)),
        ("today", TODAY),
        (" Yesterday ", date(2026, 6, 30)),
    ],
)
def test_parse_date(text: str, expected: date) -> None:
    assert parse_date(text, today=TODAY) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "Give a date"),
        ("Sep 1", "has no year"),
        ("Sep 31 2017", "doesn't exist"),
        ("1/9/2017", "day-first or month-first"),
        ("1999-09-01", "outside the years"),
        ("tomorow", "I can't read 'tomorow' as a date. Try '2017-09-01'"),
        ("2017-09-01 20:00", "I can't read"),
        ("Mon Sep 1 2017", "is a Friday, not a Monday"),
        ("٢٠١٧-09-01", "I can't read"),
    ],
)
def test_parse_date_refuses(text: str, fragment: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_date(text, today=TODAY)
    assert fragment in caught.value.message


# --- Any text at all: a UTC datetime or a CommandError, nothing else -------------------------

# fmt: off
TIME_WORDS = st.sampled_from([
    "now", "in", "ago", "today", "tomorrow", "tonight", "yesterday", "next", "last", "this",
    "of", "at", "on", "and", "fri", "friday", "thurs", "dec", "december", "sept", "1st", "31st",
    "noon", "midnight", "an", "a", "8pm", "8:30", "20:00", "23:59:59", "25:00", "13pm", "0am",
    "8.30pm", "8", "pm", "p.m.", "12/01", "1.12", "02:30", "01:30", "2026-12-01", "2026-02-30",
    "2026-03-08", "2026-11-01", "2026-12-01T20:00Z", "20:00+01:00", "+01:00", "-05", "+99:99",
    "Z", "UTC", "ET", "EST", "EDT", "AEST", "AEDT", "BST", "CET", "Europe/Berlin", "Etc/UTC",
    "2h", "30m", "1d", "1w", "hour", "hours", "minutes", "2", "30", "2026", "1999", "2100",
    "9999", "0", "99999999999", ",", ".", "\u00a0", "٣", "２", "Ⅻ",
])
# fmt: on
PHRASES = st.lists(
    TIME_WORDS | st.text(max_size=4) | st.integers().map(str), min_size=1, max_size=6
).map(" ".join)
NOWS = st.datetimes(
    min_value=datetime(2000, 1, 2),  # noqa: DTZ001 (hypothesis wants naive bounds)
    max_value=datetime(2100, 12, 30),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@settings(max_examples=400, deadline=None)
@given(
    text=st.text() | PHRASES,
    zone=st.sampled_from(ZONES),
    prefer=st.sampled_from(["future", "past"]),
    now=NOWS,
)
def test_any_text_gives_a_utc_datetime_or_a_command_error(
    text: str, zone: str, prefer: str, now: datetime
) -> None:
    try:
        result = parse_when(text, now=now, tz=ZoneInfo(zone), prefer=prefer)  # type: ignore[arg-type]
    except CommandError as error:
        assert error.message
        assert "\n" not in error.message
    else:
        assert result.tzinfo is UTC


@settings(max_examples=200, deadline=None)
@given(text=st.text() | PHRASES)
def test_any_text_gives_a_date_or_a_command_error(text: str) -> None:
    try:
        result = parse_date(text, today=TODAY)
    except CommandError as error:
        assert error.message
    else:
        assert 2000 <= result.year <= 2100
