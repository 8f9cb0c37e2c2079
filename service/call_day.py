"""Which calendar day a call is on: the one place that says it.

Everything the service dates by day takes the call's date from here: the policy version in force
(`effective`, `supersedes`: service/succession.py), a review overdue (`next_review`), the criteria's
windows counted in days and months back from it (clinical-data-contract.md §3; their edges are the
start of those days as the chart's dates are read, a date without an offset as UTC), the recent
pain-score search, the dates the cards and coverage information write (`authoredOn`, `date`), and
the start-up check that every payer has a policy version in force. A payer's dates ("effective March
1") are days of its own calendar, so the day is the one in the operator's `timezone` (an IANA name
such as `America/New_York`; default UTC) when the call arrives: with UTC, a US payer's new version
would judge orders from 19:00 EST the evening before it takes effect. What a chart writes as an
instant (a Coverage period's dateTime `start` or `end`) is compared with the call's instant
(`call_instant`), not its day: a plan ending 2026-12-31T23:59:59-05:00 is in force until 04:59:59
UTC on 1 January, whatever the time zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIME_ZONE = "UTC"


class UnknownTimeZone(ValueError):
    """The name is not an IANA time zone this system's time zone data holds."""


# Files of the system's time zone data that name no zone of their own: Debian's `localtime` is the
# host's clock setting (/etc/localtime), which would decide the call's day unseen (review s16 R-10).
NOT_ZONES = frozenset({"localtime", "posixrules"})


def time_zone(name: object) -> ZoneInfo:
    """The time zone named `name` (IANA: `America/New_York`, `UTC`); UnknownTimeZone if there is none."""
    try:
        if name in NOT_ZONES:
            raise ValueError(name)
        return ZoneInfo(name)  # type: ignore[arg-type]  (anything else is refused below)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise UnknownTimeZone(
            f"{name!r} is not an IANA time zone name (such as America/New_York or UTC) that the "
            "system's time zone data or the tzdata package installed with the service knows"
        ) from exc


def call_date(zone: str = DEFAULT_TIME_ZONE, now: datetime | None = None) -> date:
    """The calendar day, in the time zone named `zone`, of `now` (default: the present instant)."""
    return (now or _now()).astimezone(time_zone(zone)).date()


def call_instant() -> datetime:
    """The present instant, in UTC: the call's, whose day `call_date` gives."""
    return _now()


def midday(day: date) -> datetime:
    """The instant taken for a call known only by its `day` (tests, benches, what-if runs): noon UTC,
    which is on that day in every time zone from UTC-12:00 to UTC+11:59."""
    return datetime.combine(day, time(12), UTC)


def _now() -> datetime:
    return datetime.now(UTC)
