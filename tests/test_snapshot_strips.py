"""The uptime strips the snapshot cache keeps: the same objects while nothing moved, new
ones only where something did, and the bars a from-scratch build would make."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.rules import ComponentStatus
from storage.snapshot import IncidentRef
from storage.snapshot_rows import ComponentRow, History
from storage.snapshot_strips import Strips, Window, _open_during, _refs_by_day

NOW = datetime(2026, 3, 29, 9, 30, tzinfo=UTC)  # Europe/Berlin moves to summer time that night
BERLIN = ZoneInfo("Europe/Berlin")
START = NOW - timedelta(days=200)


def component(cid: int = 1) -> ComponentRow:
    return ComponentRow(
        cid, f"c{cid}", f"Component {cid}", None, 1, "operational", None, True, False,
        None, START, START, None,
    )  # fmt: skip


def history(*changes: tuple[datetime, ComponentStatus]) -> History:
    return (ComponentStatus.OPERATIONAL, list(changes))


def window(start: datetime, end: datetime | None, number: int, impact: str = "minor") -> Window:
    return (start, end, IncidentRef(number=number, title=f"Incident {number}", impact=impact))


def test_an_unchanged_strip_is_the_same_tuple_from_build_to_build() -> None:
    strips = Strips()
    windows = (window(NOW - timedelta(days=3), NOW - timedelta(days=2), 7),)
    first, uptime = strips.days(component(), history(), 1, windows, now=NOW, tz=BERLIN)
    again, again_uptime = strips.days(component(), history(), 1, windows, now=NOW, tz=BERLIN)
    assert again is first and again_uptime == uptime
    assert len(first) == 90


def test_a_window_that_moves_makes_new_bars_only_for_its_days() -> None:
    strips = Strips()
    opened = NOW - timedelta(days=5)
    before, _ = strips.days(
        component(), history(), 1, (window(opened, None, 7, "minor"),), now=NOW, tz=BERLIN
    )
    after, _ = strips.days(
        component(), history(), 1, (window(opened, None, 7, "major"),), now=NOW, tz=BERLIN
    )
    moved = [k for k, (a, b) in enumerate(zip(before, after, strict=True)) if a is not b]
    assert moved == list(range(84, 90))  # the incident's six days, today's included
    assert [b.incidents[0].impact for b in (after[k] for k in moved)] == ["major"] * 6
    assert all(not b.incidents for b in after[:84])


def test_new_history_gives_the_bars_a_from_scratch_build_makes() -> None:
    strips = Strips()
    windows = (window(NOW - timedelta(days=10), NOW - timedelta(days=9), 3),)
    strips.days(component(), history(), 1, windows, now=NOW, tz=BERLIN)
    outage = history((NOW - timedelta(days=9, hours=1), ComponentStatus.MAJOR),
                     (NOW - timedelta(days=9), ComponentStatus.OPERATIONAL))  # fmt: skip
    kept, kept_uptime = strips.days(component(), outage, 2, windows, now=NOW, tz=BERLIN)
    fresh, fresh_uptime = Strips().days(component(), outage, 2, windows, now=NOW, tz=BERLIN)
    assert kept == fresh and kept_uptime == fresh_uptime
    assert kept_uptime is not None and kept_uptime < 1
    assert kept[80].day == date(2026, 3, 20) and kept[80].major_minutes == 60


# Hypothesis takes naive bounds and attaches the zone it is given.
instants = st.datetimes(
    min_value=datetime(2026, 3, 1),  # noqa: DTZ001
    max_value=datetime(2026, 4, 30),  # noqa: DTZ001
    timezones=st.just(UTC),
)
lengths = st.one_of(st.none(), st.timedeltas(timedelta(days=-2), timedelta(days=9)))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(instants, lengths), max_size=6),
    st.sampled_from(["Europe/Berlin", "America/Santiago", "Australia/Lord_Howe", "UTC"]),
)
def test_each_day_lists_the_incidents_open_that_day_as_testing_every_window_would(
    spans: list[tuple[datetime, timedelta | None]], zone: str
) -> None:
    tz = ZoneInfo(zone)
    windows = tuple(
        window(start, None if length is None else start + length, number)
        for number, (start, length) in enumerate(spans, start=1)
    )
    days = [date(2026, 3, 1) + timedelta(days=k) for k in range(61)]
    expected = [
        tuple(ref for opened, closed, ref in windows if _open_during(opened, closed, day, tz))
        for day in days
    ]
    assert _refs_by_day(days, windows, tz) == expected
