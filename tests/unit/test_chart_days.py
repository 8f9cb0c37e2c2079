"""engine/chart_days.py: which of two chart dates is on the later day, as a removal is weighed against
what it undoes (review24c LOW 3: moments in different offsets; LOW 4: dates written to a month or a year)."""

from __future__ import annotations

import pytest

from service.engine.chart_days import day_order, one_day, ranking_days
from service.fhirdates import parse_datetime, precision


def order(first: str, second: str) -> int:
    a, b = parse_datetime(first), parse_datetime(second)
    assert a is not None and b is not None
    return day_order(a, b, precision(first), precision(second))


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("2022-03-02T09:00:00Z", "2022-03-01T15:00:00Z", 1),
        ("2022-03-01T09:00:00Z", "2022-03-01T15:00:00Z", 0),  # one day, whatever the hours
        # 04:00 UTC on 2 March is after 01:00 UTC on 2 March, its own day 1 March though: one day's
        ("2022-03-01T23:00:00-05:00", "2022-03-02T01:00:00Z", 0),
        ("2022-03-02T01:00:00Z", "2022-03-01T23:00:00-05:00", 0),
        ("2022-03-01T20:00:00-05:00", "2022-03-02T04:00:00+03:00", 0),  # one instant
        # days in the order of the instants decide, in any offsets
        ("2022-03-02T16:00:00Z", "2022-03-01T10:00:00-05:00", 1),
        ("2022-03-01T23:00:00-05:00", "2022-03-02T01:00:00-05:00", -1),
        # a date is the chart's own day, not the instant of its midnight in UTC
        ("2022-03-02", "2022-03-01T20:00:00-05:00", 1),
        ("2022-03-01", "2022-03-02T02:00:00+09:00", -1),
        ("2022-03-01", "2022-03-01T23:00:00-05:00", 0),
        # a month or a year is each of its days
        ("2022", "2022-03-15T09:00:00Z", 0),
        ("2022-03", "2022-03-15", 0),
        ("2022-03", "2022-03-31T23:00:00-05:00", 0),
        ("2022-03", "2022-04-01", -1),
        ("2022-03", "2022-02-28T23:00:00Z", 1),
        ("2022", "2021-12-31", 1),
        ("2022", "2023-01-01T00:30:00+01:00", -1),
        ("2022", "2022-12", 0),
        ("2021", "2022-01", -1),
        ("9999", "9999-12-31", 0),
    ],
)
def test_day_order(first: str, second: str, expected: int) -> None:
    assert order(first, second) == expected
    assert order(second, first) == -expected


def test_only_a_month_or_a_year_is_more_than_one_day() -> None:
    assert [one_day(precision(w)) for w in ("2022", "2022-03", "2022-03-01", "2022-03-01T10:00:00Z")] == [
        False,
        False,
        True,
        True,
    ]


@pytest.mark.parametrize(
    ("written", "days"),
    [
        # own days in the order of the instants stay the chart's own, whatever the offsets
        (["2022-03-12T23:30:00-05:00", "2022-03-13T09:00:00-04:00"], ["2022-03-12", "2022-03-13"]),
        (["2022-11-06T00:30:00-04:00", "2022-11-06T09:00:00-05:00"], ["2022-11-06", "2022-11-06"]),
        (["2025-06-01T23:00:00-04:00", "2025-06-02T10:00:00Z"], ["2025-06-01", "2025-06-02"]),
        # a newer record on an older own day is on the older record's day
        (["2022-03-02T01:00:00Z", "2022-03-01T23:00:00-05:00"], ["2022-03-02", "2022-03-02"]),
        (["2022-03-01T23:00:00-05:00", "2022-03-02T01:00:00Z"], ["2022-03-02", "2022-03-02"]),  # any order
        # one instant in two offsets: one day, the later of the two
        (["2022-03-01T20:00:00-05:00", "2022-03-02T01:00:00Z"], ["2022-03-02", "2022-03-02"]),
        # +14:00 and -12:00: two own days apart, against the instants
        (["2022-03-03T01:00:00+14:00", "2022-03-01T23:30:00-12:00"], ["2022-03-03", "2022-03-03"]),
        # a date is its own day and raises no record; a missing date stays missing
        (["2022-03-02", "2022-03-01T23:00:00-05:00", None], ["2022-03-02", "2022-03-01", None]),
    ],
)
def test_ranking_days_keep_own_days_unless_they_contradict_the_instants(
    written: list[str | None], days: list[str | None]
) -> None:
    moments = [parse_datetime(w) for w in written]
    assert [d.isoformat() if d else None for d in ranking_days(moments)] == days
