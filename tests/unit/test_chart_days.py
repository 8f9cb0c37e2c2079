"""engine/chart_days.py: which of two chart dates is on the later day, as a removal is weighed against
what it undoes (review24c LOW 3: moments in different offsets; LOW 4: dates written to a month or a year)."""

from __future__ import annotations

import pytest

from service.engine.chart_days import day_order, one_day
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
