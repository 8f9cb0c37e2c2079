"""FHIR date, dateTime and Duration parsing into timezone-aware values.

FHIR allows partial dates (`2025`, `2025-03`) and dateTimes with or without an offset; every
comparison the engine makes needs one comparable type, so everything becomes an aware datetime. A
dateTime keeps the offset it was written with: instants compare the same in any offset, and its
date is the chart's own (`2026-06-03T22:00:00-05:00` is 3 June, as the clinician wrote it, not the
4 June it is in UTC). Dates, and dateTimes without an offset, are read as UTC.

Only the forms FHIR R4 allows are read (datatypes.html, the date and dateTime regular expressions;
an instant is a dateTime): any other text is undated, as a FHIR server indexes it (sekmet-fhir sorts
it with the undated ones), so that a chart reads alike prefetched and searched (review28c LOW 3).
"""

from __future__ import annotations

import re
from datetime import MAXYEAR, UTC, date, datetime, timedelta
from typing import Any, TypeVar

from service.wording import unsigned_zero

# A time unit as a chart spells it (UCUM code or word): its days, its calendar months when it counts
# in months (a month's supply runs to the same day of the next month; as days it is 30), and its word.
_UNITS: tuple[tuple[tuple[str, ...], float, int | None, str], ...] = (
    (("s", "sec", "second", "seconds"), 1 / 86400, None, "second"),
    (("min", "mins", "minute", "minutes"), 1 / 1440, None, "minute"),
    (("h", "hr", "hrs", "hour", "hours"), 1 / 24, None, "hour"),
    (("d", "day", "days"), 1.0, None, "day"),
    (("wk", "week", "weeks"), 7.0, None, "week"),
    (("mo", "month", "months"), 30.0, 1, "month"),
    (("a", "yr", "year", "years"), 365.0, 12, "year"),
)
_TIME_UNITS: dict[str, tuple[float, int | None]] = {
    spelling: (days, months) for spellings, days, months, _ in _UNITS for spelling in spellings
}
_UNIT_WORDS = {spelling: word for spellings, _, _, word in _UNITS for spelling in spellings}
_MOST_MONTHS = 12 * MAXYEAR  # a longer supply ends past the calendar in days as well


# FHIR R4's date, and its dateTime (datatypes.html), in one: a year (0001-9999), a month, a day, then a
# time with seconds (60: a leap second), a fraction and a zone, which R4's text requires with a time and
# this service reads as UTC when absent. ASCII digits only; no space, no "t" or "z", no week or ordinal
# date, no basic format (20260301), no zone without its colon (+0500) or past 14 hours.
# The spec's expression, its groups made non-capturing (a fifth of the cost: nothing reads them).
_FHIR_DATETIME = re.compile(
    r"(?:[0-9](?:[0-9](?:[0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
    r"(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[1-2][0-9]|3[0-1])"
    r"(?:T(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
    r"(?:Z|(?:\+|-)(?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))?)?)?)?"
).fullmatch


def written_as_fhir_date(value: str) -> bool:
    """Whether `value` is written as FHIR R4's date or dateTime allow (`_FHIR_DATETIME`), whatever the
    calendar says of its day."""
    return _FHIR_DATETIME(value) is not None


def parse_datetime(value: Any) -> datetime | None:
    """A FHIR date or dateTime as an aware datetime in its own offset (UTC when it states none; partial
    dates take their first instant); None for text FHIR does not allow (`_FHIR_DATETIME`) or a day the
    calendar does not have (30 February)."""
    if not isinstance(value, str) or _FHIR_DATETIME(value) is None:
        return None
    try:
        if len(value) == 4:
            return datetime(int(value), 1, 1, tzinfo=UTC)
        if len(value) == 7:
            return datetime(int(value[:4]), int(value[5:7]), 1, tzinfo=UTC)
        if len(value) == 10:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        if value[16:19] == ":60":  # a leap second, which FHIR allows and Python cannot hold: the one before
            return parse_datetime(f"{value[:17]}59{value[19:]}")
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    if 1 < parsed.year < MAXYEAR:
        return parsed  # an offset is under a day: in UTC it is still inside the calendar
    try:
        parsed.astimezone(UTC)  # an instant beyond the representable years in UTC is unusable
    except OverflowError:
        return None
    return parsed


def shifted(moment: datetime, by: timedelta) -> datetime:
    """`moment + by`, held at the first or last representable instant instead of overflowing (a
    chart may date a procedure in year 1 or 9999). The edge is in UTC: in `moment`'s own offset it
    could lie outside the years UTC can hold (1 January of year 1 at +05:00)."""
    try:
        result = moment + by
    except OverflowError:
        return (datetime.min if by < timedelta(0) else datetime.max).replace(tzinfo=UTC)
    if 1 < result.year < MAXYEAR:
        return result  # an offset is under a day: in UTC it is still inside the calendar
    try:
        result.astimezone(UTC)
    except OverflowError:  # within its own offset's years, past UTC's: at the edge it is near
        return (datetime.max if result.year > 1 else datetime.min).replace(tzinfo=UTC)
    return result


def days_later(moment: datetime, days: float) -> datetime:
    """`moment` plus `days` (a supply duration of any size), held at the calendar's first or last
    instant as `shifted` is: an order authored late in year 9999 still has an end to compare."""
    bound = timedelta.max.days
    return shifted(moment, timedelta(days=min(max(days, -bound), bound)))


def open_ended(moment: datetime) -> bool:
    """A date in the calendar's last year stands for "no end": EHRs write 9999-12-31 for an
    open-ended prescription, and no real course is planned that far."""
    return moment.year == MAXYEAR


def start_of_day(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def duration_days(duration: Any) -> float | None:
    """Days in a FHIR Duration (`{value, unit|code}`), or None when it has no usable unit."""
    known = _time_unit(duration)
    return None if known is None else float(duration["value"]) * known[0]


def _time_unit(duration: Any) -> tuple[float, int | None] | None:
    """A FHIR Duration's unit (`_TIME_UNITS`: its days, its calendar months), or None when it has no
    number or no usable unit: read once, by `duration_days` and `supply_end` alike."""
    if not isinstance(duration, dict) or not isinstance(duration.get("value"), int | float):
        return None
    return _TIME_UNITS.get(str(duration.get("code") or duration.get("unit") or "").lower())


def in_calendar_months(value: float, unit: str | None) -> float | None:
    """`value` of a `unit` that counts in calendar months (mo, a: 1 a is 12 mo) in months; None for
    any other unit (days and weeks are not a fixed part of a month: `quantity_against_months`)."""
    known = _TIME_UNITS.get(str(unit or "").strip().lower())
    return None if known is None or known[1] is None else value * known[1]


def in_hours(value: float, unit: str | None) -> float | None:
    """`value` of a time `unit` in hours (a month 30 days, a year 365), or None when the unit is not a
    time unit: 300 min are 5 hours, 1 d is 24."""
    known = _TIME_UNITS.get(str(unit or "").strip().lower())
    return None if known is None else value * known[0] * 24


def supply_end(start: datetime, duration: Any) -> datetime | None:
    """When a supply of `duration` (a FHIR Duration) from `start` runs out: whole months and years in
    calendar months (a 6-month supply from 1 March lasts to 1 September, as "6 months" is counted:
    `supply_months`), other units in days; None when the duration has no usable unit."""
    known = _time_unit(duration)
    if known is None:
        return None
    months = supply_months(duration)
    if months is None:
        return days_later(start, float(duration["value"]) * known[0])
    return months_later(start, months)


def supply_months(duration: Any) -> int | None:
    """A supply's length in calendar months when it is written in whole months or years (`supply_end`
    counts it so: it ends on the same day of a later month, however many days that is); None when it
    counts in days or has no usable unit."""
    known = _time_unit(duration)
    if known is None or known[1] is None:
        return None
    value = float(duration["value"])
    return int(value) * known[1] if value.is_integer() and abs(value) <= _MOST_MONTHS else None


def months_before(day: date, months: int) -> date:
    """The same calendar day `months` earlier (clamped to the month's last day): AMB-44 clocks. Before
    year 1 (a chart's placeholder date) it is the first day there is; past year 9999 (`months`
    negative: later), the last."""
    month_index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(month_index, 12)
    month += 1
    if year < 1:
        return date.min
    if year > MAXYEAR:
        return date.max
    for candidate_day in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate_day))
        except ValueError:
            continue
    raise AssertionError("unreachable")


Moment = TypeVar("Moment", date, datetime)


def against_months(start: Moment, end: Moment, months: int, *, from_start: bool = False) -> int:
    """How the time from `start` to `end` compares with `months` calendar months (AMB-44: "month =
    calendar months from the request date"): 1 longer, 0 exactly as long, -1 shorter. The months are
    counted back from `end` (a pain history to the request date, a course to its last day: 31 August to
    28 February is 5 months 28 days, as `human_span` says), or forward from `start` with `from_start`
    (a life expectancy from the request date: 90 days from 30 November reach 28 February, 3 months).
    The one rule every threshold in months is judged by."""
    if from_start:
        return _sign(end, months_later(start, months))
    return _sign(months_later(end, -months), start)


def months_later(moment: Moment, months: int) -> Moment:
    """`moment` `months` calendar months later (earlier when negative), at the same time of day."""
    if isinstance(moment, datetime):
        return datetime.combine(months_before(moment.date(), -months), moment.timetz())
    return months_before(moment, -months)


def _sign(later: Moment, earlier: Moment) -> int:
    return (later > earlier) - (later < earlier)


def quantity_against_months(value: float, unit: str | None, months: int, day: date) -> int | None:
    """A time quantity (`value` `unit`: a life expectancy of 90 d) against `months` calendar months
    from `day`, the request date (`against_months`): a quantity in months or years compares as months
    (1 a is 12 mo), one in days, weeks or hours as the time it runs from `day` (90 days from 6 December
    reach 6 March: 3 months). None when `unit` is not a time unit."""
    known = _TIME_UNITS.get(str(unit or "").strip().lower())
    if known is None:
        return None
    in_months = in_calendar_months(value, unit)
    if in_months is not None:
        return _sign(in_months, float(months))
    start = start_of_day(day)
    return against_months(start, days_later(start, value * known[0]), months, from_start=True)


def human_quantity(value: float, unit: str | None) -> str | None:
    """A time quantity in words, as recorded ("90 days", "13 weeks", "1 year"); None for another unit."""
    word = _UNIT_WORDS.get(str(unit or "").strip().lower())
    if word is None:
        return None
    number = unsigned_zero(f"{value:g}")  # -0.0 days are "0 days"
    return f"{number} {word}" if value == 1 else f"{number} {word}s"


_CALENDAR_PERIODS = {"month": 1, "year": 12}  # a date without a day or month: the months it spans
SPANS = tuple(_CALENDAR_PERIODS)  # what `precision` calls a date written to more than a day


def precision(written: Any) -> str:
    """How a FHIR date or dateTime that `parse_datetime` reads is written: with a time, or only its day,
    month or year, told by its length as FHIR's forms are (`_FHIR_DATETIME`: a time makes it longer
    than any date)."""
    if not isinstance(written, str) or len(written) > 10:
        return "time"
    return {4: "year", 7: "month"}.get(len(written), "day")


def period_after(first: date, written_to: str) -> date:
    """The first day after the day, month or year that a date written to `written_to` (`precision`)
    and starting on `first` stands for: a month and a year end at the calendar's last day; the last
    day there is when that is past the calendar."""
    if written_to in _CALENDAR_PERIODS:
        return months_before(first, -_CALENDAR_PERIODS[written_to])
    return first + timedelta(days=1) if first < date.max else date.max


def last_day(first: date, written_to: str) -> date:
    """The last day a date written to `written_to` and starting on `first` stands for: `first`, or the
    last of its month or year (`period_after`; date.max when that is past the calendar)."""
    if written_to not in _CALENDAR_PERIODS:
        return first
    after = period_after(first, written_to)
    return after if after == date.max else after - timedelta(days=1)


def last_day_written(moment: datetime, written_to: str) -> datetime:
    """`moment` when written to a day or a time, else the first instant of the last day of the month or
    year it stands for (`last_day`), in its offset."""
    if written_to not in _CALENDAR_PERIODS:
        return moment
    return datetime.combine(last_day(moment.date(), written_to), moment.timetz())


def human_dates_to(first: date | datetime, last: date | datetime, written_to: str) -> str:
    """The days from `first` to `last` in a card's words no finer than `written_to`: one month or year
    ("March 2025"), else both ("January 2025 to March 2025"); a date written to a day is `first`'s."""
    said, to = human_date_to(first, written_to), human_date_to(last, written_to)
    return said if said == to or written_to not in _CALENDAR_PERIODS else f"{said} to {to}"


def begun_by(written: Any, day: date, instant: datetime) -> bool | None:
    """Whether what starts at `written` (a FHIR date or dateTime: a period's `start`) has begun for a
    call at `instant`, whose day is `day` (in the service's time zone, service/call_day.py): a dateTime
    is the instant it names, in whatever offset it is written; a date or partial date is its first
    day. None when `written` cannot be read."""
    moment = parse_datetime(written)
    if moment is None:
        return None
    if precision(written) == "time":
        return moment <= instant
    return moment.date() <= day


def last_day_of(written: Any) -> str | None:
    """The last day a FHIR date or dateTime covers, as an ISO date: a dateTime's or a date's own day, a
    month's or a year's last (`period_after`); None when `written` cannot be read."""
    moment = parse_datetime(written)
    if moment is None:
        return None
    written_to = precision(written)
    if written_to in ("day", "time"):
        return moment.date().isoformat()
    return (period_after(moment.date(), written_to) - timedelta(days=1)).isoformat()


def end_words(written: Any) -> str | None:
    """When what ends at `written` (a FHIR date or dateTime: a period's `end`) ended, in words that
    cannot mislead: a date, month or year as the last day it covers (`last_day_of`); a dateTime as the
    instant it names, in UTC ("2026-12-05 17:00 UTC", with its seconds when it names any), not its
    own date, which may be another day than the service's (2026-12-06T02:00:00+09:00 ended on 5
    December in UTC: session review s18 R-4). None when `written` cannot be read."""
    moment = parse_datetime(written)
    if moment is None or precision(written) != "time":
        return last_day_of(written)
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # an instant at the very edge of the calendar: its own day
        return last_day_of(written)
    return utc.strftime("%Y-%m-%d %H:%M:%S UTC" if utc.second else "%Y-%m-%d %H:%M UTC")


def not_over_by(written: Any, day: date, instant: datetime) -> bool | None:
    """Whether what ends at `written` (a FHIR date or dateTime: a period's `end`) has not ended for a
    call at `instant` on `day`: a dateTime ends at the instant it names (2026-12-31T23:59:59-05:00 is
    04:59:59 UTC on 1 January); a date covers its whole day, a month or year to its last day
    (`period_after`). None when `written` cannot be read."""
    moment = parse_datetime(written)
    if moment is None:
        return None
    written_to = precision(written)
    if written_to == "time":
        return instant <= moment
    after = period_after(moment.date(), written_to)
    return after == date.max or day < after


MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
MONTHS = tuple(name[:3] for name in MONTH_NAMES)


def human_date(moment: date | datetime) -> str:
    """A date as a card writes it: short and unambiguous in any locale ("20 Apr 2023"), in English
    whatever the process's locale (`strftime`'s `%b` would follow it)."""
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"


def human_as_written(written: str) -> str:
    """A FHIR date or dateTime in a card's words, no finer than it is written ("2021", "March 2021",
    "12 Mar 2021"); the text itself when it cannot be read."""
    moment = parse_datetime(written)
    return written if moment is None else human_date_to(moment, precision(written))


def human_date_to(moment: date | datetime, written_to: str) -> str:
    """A date in a card's words no finer than `written_to` (`precision`) says it is written: "2021",
    "March 2021", else "12 Mar 2021"."""
    if written_to == "year":
        return str(moment.year)
    return human_month(moment) if written_to == "month" else human_date(moment)


def human_month(moment: date | datetime) -> str:
    """A month as a sentence names it ("January 2022"), in English whatever the process's locale."""
    return f"{MONTH_NAMES[moment.month - 1]} {moment.year}"


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _joined(*parts: tuple[int, str]) -> str:
    return " ".join(_plural(n, unit) for n, unit in parts if n) or "0 days"


def human_days(days: float) -> str:
    """A number of days as a person writes it (`days_unit`): days under four weeks, weeks (and days)
    under a year when they divide evenly or under 13 weeks, whole years, else the days themselves (a
    threshold of 183 days is not "6 months": the card does not round what it compares)."""
    whole = round(days)
    unit = days_unit(days)
    if unit == "years":
        return _plural(whole // 365, "year")
    return _joined((whole // 7, "week"), (whole % 7, "day")) if unit == "weeks" else _plural(whole, "day")


def days_unit(days: float) -> str:
    """The unit `human_days` says a number of days in: "days", "weeks" (and days) or "years"."""
    whole = round(days)
    if whole < 28:
        return "days"
    if whole % 365 == 0:
        return "years"
    return "weeks" if whole < 91 or (whole % 7 == 0 and whole < 365) else "days"


SPAN_IN_MONTHS = 91  # days from which `human_span` says a span in calendar months (13 weeks)


def human_span(start: datetime, end: datetime) -> str:
    """The time from `start` to `end` in calendar terms: "3 years 7 months", "5 months 12 days",
    "8 weeks", "10 days" (under a year the days are kept: they can decide a threshold). The months are
    counted back from `end`, as `against_months` counts them: 28 February to 31 August is 6 months, as
    it judges it, not "6 months 3 days" beside a "not more than 6 months" (review25d)."""
    if end <= start:
        return "0 days"
    days = (end.date() - start.date()).days
    return human_days(days) if days < SPAN_IN_MONTHS else _in_months(start, end)


def human_span_range(
    shortest: tuple[datetime, datetime], longest: tuple[datetime, datetime], unit: str | None = None
) -> str:
    """From the length of `shortest` to that of `longest`, in one unit scheme: the `unit` a threshold it
    is set beside is said in (`human_span_in`: "9 weeks 2 days to 16 weeks" beside "needs at least 12
    weeks", "2 months 1 day to 3 months 20 days" beside "needs at least 6 months"), else `human_span`'s,
    both in months and days once the longer is said so, not "8 weeks 6 days to 3 months 20 days"
    (review26f); said once when both read alike, not "7 weeks 2 days to 7 weeks 2 days" (review26c)."""
    if unit is not None:
        low, high = human_span_in(*shortest, unit), human_span_in(*longest, unit)
    else:
        low, high = human_span(*shortest), human_span(*longest)
        if (longest[1].date() - longest[0].date()).days >= SPAN_IN_MONTHS and shortest[1] > shortest[0]:
            low = _in_months(*shortest)
    return low if low == high else f"{low} to {high}"


def human_span_in(start: datetime, end: datetime, unit: str) -> str:
    """The time from `start` to `end` in a threshold's `unit` (`days_unit`, or "months"), so a clinician
    compares like with like: "65 days" for days, "9 weeks 2 days" for weeks, calendar months and days
    (years and months: `human_span`) for months and years."""
    if end <= start:
        return "0 days"
    if unit in ("months", "years"):
        return _in_months(start, end)
    return human_days_in((end.date() - start.date()).days, unit)


def human_days_in(days: int, unit: str) -> str:
    """A number of days in a threshold's `unit`, true whatever day they begin on: "2 weeks 6 days" for
    weeks, else days ("20 days", "42 days" beside months and days: a month is no fixed number of days)."""
    return _joined((days // 7, "week"), (days % 7, "day")) if unit == "weeks" else _plural(days, "day")


def human_months(months: int) -> str:
    """A number of calendar months in words, whole years as years: "6 months", "1 year", "1 year 6
    months" (as `human_span` says a span of them), never "12 months" for a supply written as a year."""
    return _joined(*zip(divmod(months, 12), ("year", "month"), strict=True))


def _in_months(start: datetime, end: datetime) -> str:
    """The time from `start` to `end` (`end` later) in calendar years and months, else months and
    days (`human_span`)."""
    first, last = start.date(), end.date()
    months = (last.year - first.year) * 12 + last.month - first.month
    anchor = months_before(last, months)
    if anchor < first:
        months -= 1
        anchor = months_before(last, months)
    rest = (anchor - first).days
    return human_months(months) if months >= 12 else _joined((months, "month"), (rest, "day"))
