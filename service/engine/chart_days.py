"""Whether one chart date is on a later day than another, as a removal is weighed against what it undoes.

The pump-state rule (engine/classify `_removed_later`) and the device rule (engine/checks/devices
`_removed_by`) both ask it, so it is answered here once. A chart's date is the day it was written
for (service/fhirdates.py: a dateTime keeps its own offset, so 2022-03-01T23:00-05:00 is 1 March),
and two dates are on different days only when the chart leaves no doubt which came first:

- two moments with a time compare by their days, each in its own offset, unless those days put them
  in the opposite order to the instants they name (a removal at 23:00-05:00 on 1 March, 04:00 UTC on
  2 March, came after a refill at 01:00 UTC on 2 March, though its own day is the earlier): which
  day each is on then depends on the offset it is read in, and they are one day's (review24c LOW 3);
- a date without a time is the chart's own day, and one written to a month or a year only is each
  day of it (`written_to`, fhirdates.precision): dates whose days overlap are one day's (LOW 4).

A date, and a partial date, reads as its first instant in UTC (fhirdates.parse_datetime), so a
moment at midnight UTC may be a date written without a time: it is compared as that day.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TypeVar

from service.fhirdates import period_after

_MIDNIGHT = time(0)
SPANS = ("month", "year")  # what `fhirdates.precision` calls a date written to more than a day
Moment = TypeVar("Moment", date, datetime)


def day_order(first: datetime, second: datetime, first_to: str = "time", second_to: str = "time") -> int:
    """1 when `first` is on a later day than `second`, -1 on an earlier one, 0 when the chart does not
    tell their days apart (the same day, overlapping months or years, or days against the instants).
    `first_to` and `second_to` say how each is written (`fhirdates.precision`: time, day, month, year)."""
    if _timed(first, first_to) and _timed(second, second_to):
        by_day = _sign(first.date(), second.date())
        return by_day if by_day == _sign(first, second) else 0
    first_days, second_days = _days(first, first_to), _days(second, second_to)
    if first_days[0] > second_days[1]:
        return 1
    return -1 if first_days[1] < second_days[0] else 0


def common_offset(moments: Iterable[datetime | None]) -> tzinfo | None:
    """The offset to read several timed moments' days in when they must be ranked by day (the forms of
    one fact, engine/forms.py): the newest one's, so that no two of their days contradict the order of
    their instants as their own offsets' days may; None when none is a timed instant."""
    timed = [m for m in moments if m is not None and m.tzinfo is not None and _timed(m, "time")]
    return max(timed).tzinfo if timed else None


def day_in(moment: datetime, offset: tzinfo | None) -> date:
    """`moment`'s day read in `offset` (`common_offset`) when it is a timed instant; its own day when it
    is a date (read as midnight UTC) or no offset is given."""
    if offset is None or moment.tzinfo is None or not _timed(moment, "time"):
        return moment.date()
    return moment.astimezone(offset).date()


def one_day(written_to: str) -> bool:
    """Whether a date written so (`fhirdates.precision`) names a single day."""
    return written_to not in SPANS


def _timed(moment: datetime, written_to: str) -> bool:
    """Whether `moment` is an instant with a time of day, not a date read as its first instant."""
    return written_to == "time" and not (moment.utcoffset() == timedelta(0) and moment.time() == _MIDNIGHT)


def _days(moment: datetime, written_to: str) -> tuple[date, date]:
    """The first and last day a date stands for: its own day, or every day of its month or year."""
    day = moment.date()
    if written_to not in SPANS:
        return day, day
    after = period_after(day, written_to)
    return day, after if after == date.max else after - timedelta(days=1)  # date.max: past the calendar


def _sign(later: Moment, earlier: Moment) -> int:
    return (later > earlier) - (later < earlier)
