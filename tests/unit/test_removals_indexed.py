"""Removals weighed against what they undo through an index by day (engine/removals.Removals), not pair by
pair: the same answer as the pair-by-pair reading (tests/removals_support.py) over dates of every precision
(dates33, s33; the work it saves: test_removal_weighing_cost.py)."""

from __future__ import annotations

from datetime import datetime

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service.engine.removals import Read, Removals, Undone
from service.fhirdates import parse_datetime, precision
from service.record import REMOVALS, PatientRecord
from tests.removals_support import undone_by, weigh_each

CODES = ("33233", "62365")
_OFFSETS = ("Z", "+00:00", "-05:00", "-10:00", "-12:00", "+02:00", "+05:30", "+14:00")


@st.composite
def chart_dates(draw: st.DrawFn) -> tuple[datetime | None, str]:
    """A chart date of any precision, undated included, crowded into a few days so that they meet."""
    year = draw(st.sampled_from((2022, 2023)))
    month = draw(st.sampled_from((1, 2, 12)))
    day = draw(st.sampled_from((1, 2, 15, 28)))
    shape = draw(st.sampled_from(("none", "year", "month", "day", "time", "midnight")))
    written = {
        "none": None,
        "year": f"{year}",
        "month": f"{year}-{month:02d}",
        "day": f"{year}-{month:02d}-{day:02d}",
        "time": f"{year}-{month:02d}-{day:02d}T{draw(st.integers(0, 23)):02d}:"
        + f"{draw(st.sampled_from((0, 30))):02d}:00{draw(st.sampled_from(_OFFSETS))}",
        "midnight": f"{year}-{month:02d}-{day:02d}T00:00:00Z",
    }[shape]
    return (parse_datetime(written), precision(written)) if written else (None, "time")


def _at(written: str) -> tuple[datetime | None, str]:
    return parse_datetime(written), precision(written)


# two moments whose own days contradict their instants are one day's (chart_days.day_order): a removal on the
# next day at the very instant, or at an earlier one, of a record it does not undo; one on the day before at
# its instant that does where a removal of its day does
_EVENING, _NEXT_DAY_SAME_INSTANT = _at("2022-01-01T23:30:00-05:00"), _at("2022-01-02T04:30:00Z")
_NEXT_DAY_EARLIER = _at("2022-01-02T01:00:00Z")
# a timed record and a removal of its own day: one without a time undoes it only where its day does (the
# same-day rule), one with a time at an earlier instant of that day does where its day does (review33b: the
# random examples alone let a bisection of either index on the wrong side of the day pass most runs)
_MORNING, _EARLIER_THAT_MORNING, _THAT_DAY = (
    _at("2022-01-01T10:00:00Z"),
    _at("2022-01-01T08:00:00Z"),
    _at("2022-01-01"),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(_EVENING, False, [(_NEXT_DAY_SAME_INSTANT, "33233")], {}, "none", {"33233"})
@example(_NEXT_DAY_SAME_INSTANT, True, [(_EVENING, "33233")], {}, "none", {"33233"})
@example(_EVENING, False, [(_NEXT_DAY_EARLIER, "33233")], {}, "none", {"33233"})
@example(_EVENING, False, [], {"33233": [_NEXT_DAY_EARLIER]}, "by code", {"33233"})
@example(_MORNING, False, [(_THAT_DAY, "33233")], {}, "none", {"33233"})
@example(_MORNING, True, [(_EARLIER_THAT_MORNING, "33233")], {}, "none", {"33233"})
@given(
    put_in=chart_dates(),
    same_day=st.booleans(),
    read=st.lists(st.tuples(chart_dates(), st.sampled_from(CODES)), max_size=8),
    left_out=st.dictionaries(st.sampled_from(CODES), st.lists(chart_dates(), min_size=1, max_size=3)),
    unread=st.sampled_from(("none", "by code", "whole")),
    undoers=st.sets(st.sampled_from(CODES)),
)
def test_the_indexed_weighing_answers_as_each_pair_weighed(
    put_in: tuple[datetime | None, str],
    same_day: bool,
    read: list[tuple[tuple[datetime | None, str], str]],
    left_out: dict[str, list[tuple[datetime | None, str]]],
    unread: str,
    undoers: set[str],
) -> None:
    removals_read = [Read(when, to, code, place) for place, ((when, to), code) in enumerate(read)]
    record = PatientRecord(
        "p",
        removals_left_out={code: tuple(dates) for code, dates in left_out.items()},
        unavailable={REMOVALS: "could not be read"} if unread == "whole" else {},
        unavailable_codes={REMOVALS: {code: "modified" for code in left_out}} if unread == "by code" else {},
    )
    expected = weigh_each(undone_by(put_in[0], put_in[1], same_day), removals_read, record, undoers)
    assert Removals(removals_read, record).weigh(Undone(put_in[0], put_in[1], same_day), undoers) == expected
