"""storage/snapshot_rows.py's Converter: a driver's rows as SQLAlchemy's types make them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from storage.snapshot_rows import Converter

KINDS = ("", "time", "date", "bool", "time")


def test_each_kind_of_column_is_converted_and_the_rest_left_alone() -> None:
    later = datetime(2026, 6, 10, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    rows = [
        (1, "2026-06-10 10:00:00.000000", "2026-06-09", 1, None),
        (
            2,
            datetime(2026, 6, 10, 10, 0, tzinfo=UTC).replace(tzinfo=None),
            date(2026, 6, 9),
            False,
            later,
        ),
        (3, None, None, None, "2026-06-10 10:00:00.000000"),
        (4, "2026-06-10 10:00:00.000000", "2026-06-09", 2, None),
    ]

    out = Converter()(KINDS, rows)

    ten = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)
    assert out == [
        (1, ten, date(2026, 6, 9), True, None),
        (2, ten, date(2026, 6, 9), False, ten),
        (3, None, None, None, ten),
        (4, ten, date(2026, 6, 9), True, None),
    ]
    assert all(type(row[3]) is bool for row in out if row[3] is not None)
    assert out[0][1].tzinfo is UTC and out[1][4].tzinfo is UTC
    # An equal stored value is parsed once: the same object, in any column of the read.
    assert out[0][1] is out[3][1] is out[2][4]


def test_rows_without_conversions_come_back_as_tuples() -> None:
    assert Converter()(("", ""), [[1, "a"], [2, "b"]]) == [(1, "a"), (2, "b")]
    assert Converter()(KINDS, []) == []
