"""Whether one chart date is on a later day than another, as a removal is weighed against what it undoes.

The pump-state rule (engine/classify) and the device rule (engine/checks/devices) both ask it,
through engine/removals.Undone, so it is answered here once. A chart's date is the day it was written
for (service/fhirdates.py: a dateTime keeps its own offset, so 2022-03-01T23:00-05:00 is 1 March),
and two dates are on different days only when the chart leaves no doubt which came first:

- two moments with a time compare by their days, each in its own offset, unless those days put them
  in the opposite order to the instants they name (a removal at 23:00-05:00 on 1 March, 04:00 UTC on
  2 March, came after a refill at 01:00 UTC on 2 March, though its own day is the earlier): which
  day each is on then depends on the offset it is read in, and they are one day's (review24c LOW 3);
- a date without a time is the chart's own day, and one written to a month or a year only is each
  day of it (`written_to`, fhirdates.precision): dates whose days overlap are one day's (LOW 4). A
  removal weighs such a pair by its days (`days_written`), not as one day's: where they fall on both
  sides the dates cannot tell (engine/removals.Undone; s32, review31f L4).

A date, and a partial date, reads as its first instant in UTC (fhirdates.parse_datetime), so a
moment at midnight UTC may be a date written without a time: it is compared as that day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import TypeVar

from service.fhirdates import SPANS, last_day

_MIDNIGHT = time(0)
Moment = TypeVar("Moment", date, datetime)


def day_order(first: datetime, second: datetime, first_to: str = "time", second_to: str = "time") -> int:
    """1 when `first` is on a later day than `second`, -1 on an earlier one, 0 when the chart does not
    tell their days apart (the same day, overlapping months or years, or days against the instants).
    `first_to` and `second_to` say how each is written (`fhirdates.precision`: time, day, month, year)."""
    if timed(first, first_to) and timed(second, second_to):
        by_day = _sign(first.date(), second.date())
        return by_day if by_day == _sign(first, second) else 0
    first_days, second_days = days_written(first, first_to), days_written(second, second_to)
    if first_days[0] > second_days[1]:
        return 1
    return -1 if first_days[1] < second_days[0] else 0


def ranking_days(moments: Sequence[datetime | None]) -> list[date | None]:
    """The day to rank each of several moments by (the forms of one fact, engine/forms.py, need one
    total order where `day_order` compares two): its own day, as the chart wrote it, except that a timed
    moment is never on an earlier day than a timed moment whose instant is not after its own (the newest
    own day among them). So the days never contradict the order of the instants, and two moments whose
    own days do are one day's, as `day_order` reads a pair; where the days agree with the instants they
    stay the chart's own, in whatever offsets they are written (a record of 23:30-05:00 before a record of
    09:00-04:00 the next morning, across a daylight-saving change, keeps its day). A date (read as midnight
    UTC), or a moment with no offset, is its own day and raises no other; None stays None."""
    instants = [m for m in moments if m is not None and m.tzinfo is not None and timed(m, "time")]
    own: dict[datetime, date] = {}  # per instant (one instant in two offsets is one key), its newest own day
    for moment in instants:
        own[moment] = max(own.get(moment, date.min), moment.date())
    raised: dict[datetime, date] = {}
    newest = date.min
    for instant in sorted(own):
        newest = raised[instant] = max(newest, own[instant])
    return [
        None if m is None else raised[m] if m.tzinfo is not None and timed(m, "time") else m.date()
        for m in moments
    ]


def one_day(written_to: str) -> bool:
    """Whether a date written so (`fhirdates.precision`) names a single day."""
    return written_to not in SPANS


def timed(moment: datetime, written_to: str) -> bool:
    """Whether `moment` is an instant with a time of day, not a date read as its first instant (two such
    are weighed by their days unless those contradict their instants: `day_order`)."""
    return written_to == "time" and not (moment.utcoffset() == timedelta(0) and moment.time() == _MIDNIGHT)


def days_written(moment: datetime, written_to: str) -> tuple[date, date]:
    """The first and last day a date stands for: its own day, or every day of its month or year."""
    day = moment.date()
    return day, last_day(day, written_to)


def _sign(later: Moment, earlier: Moment) -> int:
    return (later > earlier) - (later < earlier)
