"""Uptime math against hand-computed values (the arithmetic is in the comments)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.rules import SEVERITY, ComponentStatus
from storage.uptime import DayUptime, daily_uptime, uptime_over_days, window_uptime

OK = ComponentStatus.OPERATIONAL
DEGRADED = ComponentStatus.DEGRADED
PARTIAL = ComponentStatus.PARTIAL
MAJOR = ComponentStatus.MAJOR
MAINT = ComponentStatus.MAINTENANCE

SYDNEY = ZoneInfo("Australia/Sydney")
NEW_YORK = ZoneInfo("America/New_York")
SANTIAGO = ZoneInfo("America/Santiago")
UTC_ZONE = ZoneInfo("UTC")


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


def by_day(result: list[DayUptime]) -> dict[date, DayUptime]:
    return {d.day: d for d in result}


def one_day(
    changes: list[tuple[datetime, ComponentStatus]],
    day: date,
    *,
    tz: ZoneInfo = UTC_ZONE,
    initial: ComponentStatus = OK,
) -> DayUptime:
    """The whole local `day`, seen from noon (local) the day after."""
    nxt = day + timedelta(days=1)
    now = datetime(nxt.year, nxt.month, nxt.day, 12, tzinfo=tz)
    result = daily_uptime(changes, initial=initial, start_date=None, tz=tz, now=now, days=2)
    assert result[0].day == day
    return result[0]


# --- whole UTC days ----------------------------------------------------------


def test_partial_outage_for_two_hours() -> None:
    changes = [(utc(2024, 6, 15, 10), PARTIAL), (utc(2024, 6, 15, 12), OK)]
    d = one_day(changes, date(2024, 6, 15))
    # 2 h = 7,200 s partial; 1 - 0.3 * 7200 / 86400 = 1 - 2160 / 86400 = 0.975
    assert d.uptime == pytest.approx(1 - 0.3 * 7200 / 86400)
    assert d.uptime == pytest.approx(0.975)
    assert d.partial_seconds == 7200
    assert d.major_seconds == 0
    assert d.worst is PARTIAL
    assert d.window_seconds == 86400
    assert d.outage_minutes == 120  # 7200 / 60


def test_major_outage_for_thirty_minutes() -> None:
    changes = [(utc(2024, 6, 15, 23, 0), MAJOR), (utc(2024, 6, 15, 23, 30), OK)]
    d = one_day(changes, date(2024, 6, 15))
    # 30 min = 1,800 s major; 1 - 1800 / 86400 = 0.979166...
    assert d.uptime == pytest.approx(1 - 1800 / 86400)
    assert d.major_seconds == 1800
    assert d.worst is MAJOR
    assert d.outage_minutes == 30


def test_degraded_and_maintenance_count_as_up() -> None:
    changes = [
        (utc(2024, 6, 15, 1), DEGRADED),
        (utc(2024, 6, 15, 6), OK),  # 5 h degraded = 18,000 s
        (utc(2024, 6, 15, 20), MAINT),
        (utc(2024, 6, 15, 23), OK),  # 3 h maintenance = 10,800 s
    ]
    d = one_day(changes, date(2024, 6, 15))
    assert d.uptime == 1.0
    assert d.degraded_seconds == 18000
    assert d.maintenance_seconds == 10800
    assert d.outage_minutes == 0
    # Degraded ranks above maintenance (rules.SEVERITY).
    assert d.worst is DEGRADED


def test_quiet_day_is_fully_up_and_operational() -> None:
    d = one_day([], date(2024, 6, 15))
    assert d.uptime == 1.0
    assert d.worst is OK
    assert (d.major_seconds, d.partial_seconds, d.degraded_seconds, d.maintenance_seconds) == (
        0,
        0,
        0,
        0,
    )


def test_change_before_the_window_sets_the_state_at_its_start() -> None:
    changes = [(utc(2024, 1, 1), MAJOR), (utc(2024, 6, 14, 6), OK)]
    result = daily_uptime(
        changes, initial=OK, start_date=None, tz=UTC_ZONE, now=utc(2024, 6, 15, 12), days=3
    )
    assert [d.day for d in result] == [date(2024, 6, 13), date(2024, 6, 14), date(2024, 6, 15)]
    d13, d14, d15 = result
    # Jun 13: down since Jan 1, the whole 86,400 s major: 1 - 86400 / 86400 = 0
    assert d13.uptime == 0.0
    assert d13.major_seconds == 86400
    assert d13.worst is MAJOR
    # Jun 14: major 00:00-06:00 = 21,600 s; 1 - 21600 / 86400 = 0.75
    assert d14.uptime == pytest.approx(0.75)
    assert d14.worst is MAJOR
    # Jun 15: operational all along, window 00:00-12:00 = 43,200 s
    assert d15.uptime == 1.0
    assert d15.worst is OK
    assert d15.window_seconds == 43200


def test_initial_status_applies_before_the_first_change() -> None:
    changes = [(utc(2024, 6, 15, 6), OK)]
    d = one_day(changes, date(2024, 6, 15), initial=MAJOR)
    # major 00:00-06:00 = 21,600 s; 1 - 21600 / 86400 = 0.75
    assert d.uptime == pytest.approx(0.75)


def test_changes_are_sorted_and_same_instant_changes_keep_their_order() -> None:
    t = utc(2024, 6, 15, 12)
    changes = [
        (utc(2024, 6, 15, 18), OK),
        (t, MAJOR),
        (t, PARTIAL),  # same instant, later in the list: this one holds from 12:00
    ]
    d = one_day(changes, date(2024, 6, 15))
    # partial 12:00-18:00 = 21,600 s, the major held for no time at all
    assert d.partial_seconds == 21600
    assert d.major_seconds == 0
    assert d.worst is PARTIAL
    # 1 - 0.3 * 21600 / 86400 = 1 - 0.075 = 0.925
    assert d.uptime == pytest.approx(0.925)


def test_plain_status_strings_are_accepted() -> None:
    # Model columns hold plain strings; the math must not depend on enum identity.
    changes = [(utc(2024, 6, 15, 10), "partial_outage"), (utc(2024, 6, 15, 12), "operational")]
    d = one_day(changes, date(2024, 6, 15))  # type: ignore[arg-type]
    assert d.uptime == pytest.approx(0.975)
    assert d.worst is PARTIAL


def test_unknown_status_is_an_error() -> None:
    with pytest.raises(ValueError):
        one_day([(utc(2024, 6, 15, 10), "on_fire")], date(2024, 6, 15))  # type: ignore[list-item]


# --- start date ----------------------------------------------------------------


def test_days_before_start_date_have_no_data_and_the_start_day_counts_from_midnight() -> None:
    changes = [(utc(2024, 6, 12), MAJOR), (utc(2024, 6, 13, 1), OK)]
    result = daily_uptime(
        changes,
        initial=OK,
        start_date=date(2024, 6, 13),
        tz=UTC_ZONE,
        now=utc(2024, 6, 15, 12),
        days=5,
    )
    assert [d.day for d in result] == [date(2024, 6, d) for d in range(11, 16)]
    d11, d12, d13, d14, d15 = result
    for d in (d11, d12):
        assert d.uptime is None
        assert d.worst is None
        assert d.major_seconds == 0
        assert d.outage_minutes == 0
    # Jun 13: the outage before the start date is ignored, 00:00-01:00 counts:
    # 1 - 3600 / 86400 = 0.958333...
    assert d13.uptime == pytest.approx(1 - 3600 / 86400)
    assert d13.major_seconds == 3600
    assert d13.worst is MAJOR
    assert d14.uptime == 1.0
    assert d15.uptime == 1.0


def test_start_date_after_today_means_no_data_at_all() -> None:
    result = daily_uptime(
        [], initial=OK, start_date=date(2024, 7, 1), tz=UTC_ZONE, now=utc(2024, 6, 15), days=3
    )
    assert [d.uptime for d in result] == [None, None, None]
    assert uptime_over_days(result) is None


def test_start_date_today_counts_only_today() -> None:
    result = daily_uptime(
        [], initial=OK, start_date=date(2024, 6, 15), tz=UTC_ZONE, now=utc(2024, 6, 15, 6), days=3
    )
    assert [d.uptime for d in result] == [None, None, 1.0]


def test_start_date_is_a_local_date() -> None:
    # 2024-06-14 20:00 UTC is already Jun 15 06:00 in Sydney (AEST, +10), so with
    # start_date Jun 15 the major outage from 14:00 UTC (Jun 15 00:00 AEST) counts
    # 14:00-20:00 UTC = 21,600 s on the Sydney day Jun 15.
    changes = [(utc(2024, 6, 14, 10), MAJOR), (utc(2024, 6, 14, 20), OK)]
    result = daily_uptime(
        changes,
        initial=OK,
        start_date=date(2024, 6, 15),
        tz=SYDNEY,
        now=datetime(2024, 6, 16, 12, tzinfo=SYDNEY),
        days=3,
    )
    days = by_day(result)
    assert days[date(2024, 6, 14)].uptime is None
    assert days[date(2024, 6, 15)].major_seconds == 21600
    assert days[date(2024, 6, 15)].uptime == pytest.approx(1 - 21600 / 86400)


# --- local days and DST ----------------------------------------------------------


def test_sydney_spring_forward_day_has_23_hours() -> None:
    # 2024-10-06: 02:00 AEST (+10) jumps to 03:00 AEDT (+11).
    # Day = Oct 5 14:00 UTC .. Oct 6 13:00 UTC = 23 h = 82,800 s.
    # Major 01:00 AEST (Oct 5 15:00 UTC) to 04:00 AEDT (Oct 5 17:00 UTC): 3 wall-clock
    # hours but 2 real hours = 7,200 s; 1 - 7200 / 82800 = 0.913043...
    changes = [(utc(2024, 10, 5, 15), MAJOR), (utc(2024, 10, 5, 17), OK)]
    d = one_day(changes, date(2024, 10, 6), tz=SYDNEY)
    assert d.window_seconds == 82800
    assert d.major_seconds == 7200
    assert d.uptime == pytest.approx(1 - 7200 / 82800)


def test_sydney_fall_back_day_has_25_hours() -> None:
    # 2024-04-07: 03:00 AEDT (+11) falls back to 02:00 AEST (+10).
    # Day = Apr 6 13:00 UTC .. Apr 7 14:00 UTC = 25 h = 90,000 s.
    # Major from midnight AEDT (Apr 6 13:00 UTC) to noon AEST (Apr 7 02:00 UTC)
    # = 13 h = 46,800 s; 1 - 46800 / 90000 = 0.48
    changes = [(utc(2024, 4, 6, 13), MAJOR), (utc(2024, 4, 7, 2), OK)]
    d = one_day(changes, date(2024, 4, 7), tz=SYDNEY)
    assert d.window_seconds == 90000
    assert d.major_seconds == 46800
    assert d.uptime == pytest.approx(0.48)


def test_new_york_spring_forward_day_has_23_hours() -> None:
    # 2024-03-10: 02:00 EST (-5) jumps to 03:00 EDT (-4).
    # Mar 9 = 05:00 UTC .. Mar 10 05:00 UTC = 86,400 s
    # Mar 10 = 05:00 UTC .. Mar 11 04:00 UTC = 82,800 s
    # Mar 11 so far = 04:00 UTC .. 16:00 UTC (noon EDT) = 43,200 s
    # Partial the whole time: uptime 1 - 0.3 = 0.7 on every day.
    result = daily_uptime(
        [],
        initial=PARTIAL,
        start_date=None,
        tz=NEW_YORK,
        now=datetime(2024, 3, 11, 12, tzinfo=NEW_YORK),
        days=3,
    )
    days = by_day(result)
    assert days[date(2024, 3, 9)].partial_seconds == 86400
    assert days[date(2024, 3, 10)].partial_seconds == 82800
    assert days[date(2024, 3, 10)].window_seconds == 82800
    assert days[date(2024, 3, 11)].partial_seconds == 43200
    for d in result:
        assert d.uptime == pytest.approx(0.7)
        assert d.worst is PARTIAL


def test_new_york_fall_back_day_has_25_hours() -> None:
    # 2024-11-03: 02:00 EDT (-4) falls back to 01:00 EST (-5).
    # Day = Nov 3 04:00 UTC .. Nov 4 05:00 UTC = 25 h = 90,000 s.
    # Major from the first 01:30 (EDT, 05:30 UTC) to the second 01:30 (EST,
    # 06:30 UTC) = 3,600 s; 1 - 3600 / 90000 = 0.96
    changes = [(utc(2024, 11, 3, 5, 30), MAJOR), (utc(2024, 11, 3, 6, 30), OK)]
    d = one_day(changes, date(2024, 11, 3), tz=NEW_YORK)
    assert d.window_seconds == 90000
    assert d.major_seconds == 3600
    assert d.uptime == pytest.approx(0.96)


def test_day_whose_midnight_does_not_exist() -> None:
    # Santiago 2024-09-08: 00:00 (-4) jumps to 01:00 (-3), so the day begins at
    # 04:00 UTC and ends at Sep 9 00:00 (-3) = 03:00 UTC: 23 h = 82,800 s.
    # Major 04:00-05:00 UTC = the day's first real hour = 3,600 s.
    changes = [(utc(2024, 9, 8, 4), MAJOR), (utc(2024, 9, 8, 5), OK)]
    d = one_day(changes, date(2024, 9, 8), tz=SANTIAGO)
    assert d.window_seconds == 82800
    assert d.major_seconds == 3600
    # The previous day kept none of it (it ended at 04:00 UTC).
    prev = one_day(changes, date(2024, 9, 7), tz=SANTIAGO)
    assert prev.major_seconds == 0
    assert prev.window_seconds == 86400


def test_outage_across_local_midnight_is_split_between_days() -> None:
    # Sydney in January is AEDT (+11). Major from Jan 10 23:00 local (12:00 UTC)
    # to Jan 11 01:30 local (14:30 UTC):
    # Jan 10 gets 23:00-24:00 = 3,600 s: 1 - 3600 / 86400 = 0.958333...
    # Jan 11 gets 00:00-01:30 = 5,400 s: 1 - 5400 / 86400 = 0.9375
    changes = [(utc(2024, 1, 10, 12), MAJOR), (utc(2024, 1, 10, 14, 30), OK)]
    result = daily_uptime(
        changes,
        initial=OK,
        start_date=None,
        tz=SYDNEY,
        now=datetime(2024, 1, 12, 9, tzinfo=SYDNEY),
        days=3,
    )
    days = by_day(result)
    assert days[date(2024, 1, 10)].major_seconds == 3600
    assert days[date(2024, 1, 10)].uptime == pytest.approx(1 - 3600 / 86400)
    assert days[date(2024, 1, 11)].major_seconds == 5400
    assert days[date(2024, 1, 11)].uptime == pytest.approx(0.9375)
    assert days[date(2024, 1, 12)].uptime == 1.0
    # In UTC the same outage sits inside one day (Jan 10 12:00-14:30 = 9,000 s).
    utc_day = one_day(changes, date(2024, 1, 10))
    assert utc_day.major_seconds == 9000


# --- today -----------------------------------------------------------------------


def test_today_window_ends_at_now() -> None:
    # Partial since 03:00 and still going at now = 06:00:
    # window 00:00-06:00 = 21,600 s, partial 03:00-06:00 = 10,800 s
    # 1 - 0.3 * 10800 / 21600 = 1 - 0.15 = 0.85
    changes = [(utc(2024, 6, 15, 3), PARTIAL)]
    result = daily_uptime(
        changes, initial=OK, start_date=None, tz=UTC_ZONE, now=utc(2024, 6, 15, 6), days=2
    )
    today = result[-1]
    assert today.day == date(2024, 6, 15)
    assert today.window_seconds == 21600
    assert today.partial_seconds == 10800
    assert today.uptime == pytest.approx(0.85)
    assert today.outage_minutes == 180


def test_changes_after_now_are_ignored() -> None:
    changes = [(utc(2024, 6, 15, 3), MAJOR), (utc(2024, 6, 15, 8), OK)]
    result = daily_uptime(
        changes, initial=OK, start_date=None, tz=UTC_ZONE, now=utc(2024, 6, 15, 2), days=1
    )
    assert result[0].uptime == 1.0
    assert result[0].worst is OK


def test_today_at_exactly_midnight_has_no_data_yet() -> None:
    result = daily_uptime(
        [], initial=OK, start_date=None, tz=UTC_ZONE, now=utc(2024, 6, 15), days=2
    )
    assert result[0].day == date(2024, 6, 14)
    assert result[0].uptime == 1.0
    assert result[1].day == date(2024, 6, 15)
    assert result[1].uptime is None
    assert result[1].worst is None


def test_default_is_ninety_days_ending_today_in_the_page_zone() -> None:
    # 2024-06-15 20:00 UTC is Jun 16 06:00 in Sydney: "today" is Jun 16 there.
    now = utc(2024, 6, 15, 20)
    result = daily_uptime([], initial=OK, start_date=None, tz=SYDNEY, now=now)
    assert len(result) == 90
    assert result[-1].day == date(2024, 6, 16)
    assert result[0].day == date(2024, 6, 16) - timedelta(days=89)
    assert daily_uptime([], initial=OK, start_date=None, tz=SYDNEY, now=now, days=0) == []


def test_naive_now_is_refused() -> None:
    naive = datetime(2024, 6, 15)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="timezone-aware"):
        daily_uptime([], initial=OK, start_date=None, tz=UTC_ZONE, now=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        window_uptime([], initial=OK, start=naive, end=utc(2024, 6, 16))


# --- window_uptime -----------------------------------------------------------------


def test_window_uptime() -> None:
    changes = [
        (utc(2024, 6, 1), MAJOR),  # before the window: down at its start
        (utc(2024, 6, 15, 1), PARTIAL),
        (utc(2024, 6, 15, 3), OK),
    ]
    # Window 00:00-04:00 = 14,400 s: major 00:00-01:00 = 3,600 s,
    # partial 01:00-03:00 = 7,200 s.
    # 1 - (3600 + 0.3 * 7200) / 14400 = 1 - 5760 / 14400 = 0.6
    up = window_uptime(changes, initial=OK, start=utc(2024, 6, 15), end=utc(2024, 6, 15, 4))
    assert up == pytest.approx(0.6)


def test_window_uptime_accepts_any_aware_zone() -> None:
    changes = [(utc(2024, 6, 15, 1), MAJOR), (utc(2024, 6, 15, 2), OK)]
    # Sydney 10:00-14:00 AEST = 00:00-04:00 UTC: major 3,600 of 14,400 s = 0.75
    up = window_uptime(
        changes,
        initial=OK,
        start=datetime(2024, 6, 15, 10, tzinfo=SYDNEY),
        end=datetime(2024, 6, 15, 14, tzinfo=SYDNEY),
    )
    assert up == pytest.approx(0.75)


def test_empty_window_is_none() -> None:
    t = utc(2024, 6, 15)
    assert window_uptime([], initial=OK, start=t, end=t) is None
    assert window_uptime([], initial=OK, start=t, end=t - timedelta(hours=1)) is None


# --- uptime_over_days and outage_minutes ---------------------------------------------


def test_uptime_over_days_is_seconds_weighted() -> None:
    days = [
        DayUptime(date(2024, 3, 8), None, 0, 0, 0, 0, None),  # no data: ignored
        # 86,400 s day, 8,640 s major: 0.9
        DayUptime(date(2024, 3, 9), 0.9, 8640, 0, 0, 0, MAJOR, window_seconds=86400),
        # 82,800 s DST day, all partial: 0.7
        DayUptime(date(2024, 3, 10), 0.7, 0, 82800, 0, 0, PARTIAL, window_seconds=82800),
    ]
    # (0.9 * 86400 + 0.7 * 82800) / (86400 + 82800) = (77760 + 57960) / 169200
    #   = 135720 / 169200 = 0.802127...  (a plain mean would say 0.8)
    assert uptime_over_days(days) == pytest.approx(135720 / 169200)
    # Same as 1 - (8640 + 0.3 * 82800) / 169200
    assert uptime_over_days(days) == pytest.approx(1 - (8640 + 0.3 * 82800) / 169200)


def test_uptime_over_days_weights_today_by_its_partial_window() -> None:
    # Yesterday fully up (86,400 s); today 00:00-06:00 with 3 h partial (0.85 over
    # 21,600 s): (86400 * 1 + 21600 * 0.85) / 108000 = 104760 / 108000 = 0.97
    changes = [(utc(2024, 6, 15, 3), PARTIAL)]
    result = daily_uptime(
        changes, initial=OK, start_date=None, tz=UTC_ZONE, now=utc(2024, 6, 15, 6), days=2
    )
    assert uptime_over_days(result) == pytest.approx(0.97)


def test_uptime_over_days_without_window_seconds_weighs_days_equally() -> None:
    # Hand-built days with no window length count as nominal 86,400 s days.
    days = [
        DayUptime(date(2024, 6, 1), 1.0, 0, 0, 0, 0, OK),
        DayUptime(date(2024, 6, 2), 0.5, 43200, 0, 0, 0, MAJOR),
    ]
    assert uptime_over_days(days) == pytest.approx(0.75)


def test_uptime_over_days_without_data_is_none() -> None:
    assert uptime_over_days([]) is None
    assert uptime_over_days([DayUptime(date(2024, 6, 1), None, 0, 0, 0, 0, None)]) is None


@pytest.mark.parametrize(
    ("major", "partial", "minutes"),
    [
        (0, 0, 0),
        (1800, 0, 30),
        (0, 7200, 120),
        (1800, 7200, 150),  # partial counts in full here, not at 0.3
        (89, 0, 1),  # 1.48 min
        (91, 0, 2),  # 1.52 min
        (60, 29, 1),  # 1.48 min
    ],
)
def test_outage_minutes(major: float, partial: float, minutes: int) -> None:
    day = DayUptime(date(2024, 6, 1), 1.0, major, partial, 600, 600, OK)
    assert day.outage_minutes == minutes  # degraded and maintenance not included


# --- against a brute-force reference ---------------------------------------------------


def _reference(
    changes: list[tuple[datetime, ComponentStatus]],
    initial: ComponentStatus,
    days: list[date],
    tz: ZoneInfo,
    now: datetime,
) -> list[tuple[dict[ComponentStatus, float], ComponentStatus | None]]:
    """Per day: seconds per status and the worst state held, the slow obvious way."""
    ordered = sorted(changes, key=lambda c: c[0])
    far_past = datetime(1970, 1, 1, tzinfo=UTC)
    segments = []
    state, since = initial, far_past
    for t, s in ordered:
        segments.append((since, t, state))
        state, since = s, t
    segments.append((since, now + timedelta(days=1), state))
    out = []
    for k, day in enumerate(days):
        # In UTC: subtracting two datetimes sharing one zoneinfo gives wall-clock
        # time, not elapsed time, across a DST change.
        lo = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
        if k + 1 < len(days):
            nxt = days[k + 1]
            hi = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).astimezone(UTC)
        else:
            hi = now.astimezone(UTC)
        secs = dict.fromkeys(ComponentStatus, 0.0)
        for a, b, s in segments:
            overlap = (min(b, hi) - max(a, lo)).total_seconds()
            if overlap > 0:
                secs[s] += overlap
        held = [s for s, v in secs.items() if v > 0]
        out.append((secs, max(held, key=SEVERITY.__getitem__) if held else None))
    return out


@settings(max_examples=200, deadline=None)
@given(
    offsets=st.lists(
        st.tuples(st.integers(0, 12 * 86400), st.sampled_from(list(ComponentStatus))),
        max_size=40,
    ),
    initial=st.sampled_from(list(ComponentStatus)),
    zone=st.sampled_from(["UTC", "Australia/Sydney", "America/New_York", "Asia/Kolkata"]),
    now_offset=st.integers(2 * 86400, 12 * 86400),
    base=st.sampled_from([utc(2024, 3, 5), utc(2024, 10, 1), utc(2024, 10, 30)]),
)
def test_matches_brute_force(
    offsets: list[tuple[int, ComponentStatus]],
    initial: ComponentStatus,
    zone: str,
    now_offset: int,
    base: datetime,
) -> None:
    tz = ZoneInfo(zone)
    changes = [(base + timedelta(seconds=o), s) for o, s in offsets]
    now = base + timedelta(seconds=now_offset)
    result = daily_uptime(changes, initial=initial, start_date=None, tz=tz, now=now, days=7)
    expected = _reference(changes, initial, [d.day for d in result], tz, now)
    for got, (secs, worst) in zip(result, expected, strict=True):
        if got.uptime is None:  # today at exactly midnight
            assert sum(secs.values()) == 0
            continue
        assert got.major_seconds == pytest.approx(secs[MAJOR])
        assert got.partial_seconds == pytest.approx(secs[PARTIAL])
        assert got.degraded_seconds == pytest.approx(secs[DEGRADED])
        assert got.maintenance_seconds == pytest.approx(secs[MAINT])
        assert got.window_seconds == pytest.approx(sum(secs.values()))
        assert got.worst == worst
        assert got.uptime == pytest.approx(
            1 - (secs[MAJOR] + 0.3 * secs[PARTIAL]) / sum(secs.values())
        )
